"""Devices' own MQTT credentials: Mosquitto's password and ACL files, and applying them.

``mosquitto_files`` is pure (render the files from data); ``apply`` is the shell
(read the database, write the files atomically, signal the broker to reload).
"""
