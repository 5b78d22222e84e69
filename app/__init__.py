"""The exercise's Flask app, its gunicorn settings, the traffic generator and the local APM demo."""
