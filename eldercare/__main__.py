from eldercare.cli import app

app(prog_name="eldercare")
