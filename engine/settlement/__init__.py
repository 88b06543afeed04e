"""Merchant settlement: pending-settlement funds of reconciled payments become available."""
