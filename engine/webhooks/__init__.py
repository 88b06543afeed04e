"""Merchant webhooks: the outbox delivery worker, its signing, its store and the event endpoints.

Events are written to ``outbox_events`` in the transaction of the change they report (by the payment
flows and the gateway). ``engine.webhooks.worker`` POSTs them to the merchant's ``webhook_url`` until a
2xx or the retry window ends; ``engine.bootstrap`` runs it in the API process or on its own
(``payengine webhooks``).
"""
