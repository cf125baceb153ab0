"""The flask-rpcenable example app: ``flask --app example.app run``."""
