"""Channel reconciliation: statement lines matched against our channel payments and refunds."""
