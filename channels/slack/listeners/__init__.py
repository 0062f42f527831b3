"""What bolt calls, by kind: what people write (:mod:`.messages`: direct messages,
mentions, the slash command), answers by click and form (:mod:`.answers`), and approvers'
decisions (:mod:`.decisions`).

A listener acknowledges, reads the payload into a neutral event (:mod:`channels.slack.inputs`)
and hands the turn to :class:`~channels.slack.runtime.SlackRuntime`'s background work, which
posts the typed replies as Block Kit (:mod:`channels.slack.blocks`); nothing else. They are
registered with bolt by :class:`~channels.slack.channel.SlackChannel`.
"""
