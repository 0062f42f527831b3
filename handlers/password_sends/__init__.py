"""Out-of-band password sends, on a durable scheduler.

Every send is a ``password_sends`` row with a due time: an SMS now, an SMS once receipt is
confirmed (``waiting`` until then), a voice call at the agreed time, a heads-up SMS before the
call. The package holds one concept per module; each imports only those listed before it:

- ``outcomes``: what an outcome does to a row (sent, delivered, retried with backoff,
  dead-lettered, adopted), whoever learnt it, and the password wiped once nothing needs it.
- ``reconcile``: sends left ``unconfirmed`` settled by asking the provider what it sent.
- ``restore_check``: a database older than its audit anchor (restored from an earlier
  dump): its due and waiting sends checked with the provider (``reconcile``) before any goes.
- ``calls``: the voice call step by step (greeting, code check, password, repeat).
- ``dispatch``: claim due rows, send them, record the outcomes; interrupted sends reported.
- ``scheduling``: the rows a transfer's method needs; receipt releasing the waiting SMS; a
  call booked by the sender.
- ``callbacks``: the provider's signed status callbacks for an SMS and for a call.
- ``sms_replies``: the recipient's replies to our SMS: STOP, START, CALL.

``channels/twilio`` translates webhooks into ``callbacks``, ``calls`` and ``sms_replies``.
"""
