"""What the terminal chat (``safehaven chat``) says beyond the conversation itself."""

from __future__ import annotations

STOPPED = ("Stopped. Your answers so far are kept; run `safehaven chat` to carry on where "
           "you were.")
OPEN_TRANSFER = ("You have transfer {reference} open with {files}. Add {names} to it, or "
                 "start a new transfer?")
ADD_TO_OPEN = "Add to {reference}"
START_NEW = "Start a new transfer ({reference} is cancelled and its files deleted)"
LEAVE_AS_IS = "Neither: leave {reference} as it is and send nothing"
LEFT_AS_IS = "Nothing was sent; {reference} is as you left it."
PICK_ONE = "Please type 1, 2 or 3."

# `safehaven chat` once the conversation waits on nobody at the terminal.
WAITING_FOR = ("Waiting for {approvers} to decide on {reference}: their answer shows here as "
               "soon as it is given. Meanwhile you can type `list`, `status` or `help`. "
               "`quit` or Ctrl-C leaves; `safehaven chat` later shows the outcome.")
COMMANDS_HINT = ("Type `status` (your open transfers), `status REF`, `list`, `archive REF`, "
                 "`mistake REF`, `cancel REF`, `help`, or `quit` to leave. To share files, "
                 "run `safehaven chat FILE...`.")
APPROVER_COMMANDS_HINT = "To decide a request: `approve REF`, or `reject REF REASON`."
LEFT = "Left the conversation; run `safehaven chat` to carry on."
NEW_MESSAGES = "New for you:"

# The overview `safehaven chat` opens with when it is given no files.
OPEN_HEADER = "Your open transfers:"
NO_OPEN = "You have no open transfers."
OPEN_LINE = "• {reference} to {recipient}: {status}. {next}"
NO_RECIPIENT_YET = "(recipient not given yet)"
DECIDE_HEADER = "Waiting for your decision:"
DECIDE_LINE = ("• {reference} from {sender}: type `approve {reference}`, or "
               "`reject {reference} REASON`.")

# What comes next for an open transfer, by its status (bot.statuses.TransferStatus).
NEXT_DRAFT = "Run `safehaven chat` to carry on answering the questions."
NEXT_APPROVAL = "Asked: {approvers}; their answer shows here."
NEXT_PACKAGING = "It is being packaged; the link or archive shows here when it is ready."
NEXT_FAILED = "Packaging failed: `status {reference}` says more; `cancel {reference}` ends it."
READY_LINK = "ready: the secure download link is with you"
NEXT_READY = ("`status {reference}` shows the password sends; `mistake {reference}` if it "
              "went to the wrong person.")

# An approval request shown in a terminal: there are no buttons to press.
APPROVAL_HOW = ("To decide: type `approve {reference}`, or `reject {reference} REASON`, in "
                "`safehaven chat`; or run `safehaven approve {reference}` (add `--reject "
                "--reason REASON` to reject).")
DECIDE_USAGE = "Type `approve REF`, or `reject REF REASON` (the reason is told to the sender)."

# `safehaven share` when the transfer waits for an approver.
SHARE_LATER = ("Their decision, and the link or archive once approved, will be kept for you: "
               "run `safehaven chat` to see it.")

# Command-line errors of the transfer commands, each naming the argument and what it takes.
NOT_A_REFERENCE = "{value!r} is not a transfer reference: one like SH-7K3Q-9F"
NOT_A_FILE = "{value!r} is not a file that can be read (give the path of each file to share)"
REASON_NEEDED = "--reject needs --reason: why it is rejected (the sender is told)"
CONSOLE_ONLY = (
    "{flag} {value!r}: in production a terminal acts only for console: people "
    "(console:NAME). Slack and Teams users answer in their app, where what is kept for "
    "them is handed over; a console: id the policy's [people] lists for the same person "
    "gets it here too."
)
