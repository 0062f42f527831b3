"""Microsoft Teams: the whole Safe Haven conversation in a personal chat with the bot.

Built on botbuilder's ``CloudAdapter``. Modules: ``settings`` (the Bot Framework
variables), ``inbound`` (activities to neutral events), ``cards`` (neutral replies to
Adaptive Cards and file cards), ``turns`` (what each activity does), ``channel`` (the
adapter, route and notifier), ``files`` (downloads and OneDrive uploads), ``records`` and
``models`` (the channel's own tables), ``app`` (wiring), ``package`` (the app package).
See docs/teams.md.
"""
