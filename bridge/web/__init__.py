"""HTTP: the appservice API, webhooks, the REST API, health and metrics on one listener."""
