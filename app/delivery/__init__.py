"""Delivery domain: outbound webhooks to teams' CRMs."""
