"""Past one machine: readings partitioned by device over RabbitMQ, one worker per partition."""
