"""What the tests share: the fakes of the services Safe Haven talks to (Slack, Teams, Twilio,
all on :class:`tests.support.server.FakeServer`), and the chat harness
(:mod:`tests.support.chat`) that drives one conversation the same way on every channel."""
