"""Transfers: customer wallet -> customer wallet (same merchant, same currency) and merchant available
balance -> customer wallet (cash-back). The payer is debited synchronously in the request's booking
transaction, together with the transfer row, its webhook event and its idempotent response.
"""
