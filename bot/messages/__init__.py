"""Every sentence Safe Haven says to a person, in one package.

Keeping user-facing text here (and nowhere else) lets information governance review the
wording against the organisation's policies, and lets it be translated. Each module holds
the text of one area; code imports from the module it needs.
"""
