"""takeback: the application code behind the routes in app.py.

Modules import their heavy dependencies (pydantic, jinja2, boto3) at module
level, so app.py imports them only on first use: a health check or a cold
start pays for nothing it does not run.
"""
