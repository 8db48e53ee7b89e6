"""Outgoing webhooks: signed job notifications, retried and recorded."""
