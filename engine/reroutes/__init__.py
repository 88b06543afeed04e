"""Failed channel refunds resolved by an operator: re-routed to the customer's wallet or a bank payout, or taken
over by hand (flow.py holds the rules)."""
