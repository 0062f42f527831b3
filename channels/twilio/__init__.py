"""Twilio: SMS and voice-call password delivery, and its webhooks."""
