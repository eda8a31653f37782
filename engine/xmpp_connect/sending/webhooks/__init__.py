"""Webhook push of the event feed (Standard Webhooks): subscriptions, signed delivery, retries."""
