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
