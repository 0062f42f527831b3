"""What the password call says, the heads-up SMS, and delivery receipts to the sender."""

from __future__ import annotations

CALL_GREETING = (
    "Hello. This is an automated call from {organisation}, Safe Haven secure file transfer."
)
# Six digits submit themselves (the Gather takes exactly six): no "then press hash".
CALL_ASK_CODE = "Before I say anything else, please key in the six digit code from our email."
CALL_WRONG_CODE = "That code is not right. Please try again."
CALL_NO_CODE = "I did not hear a code."
CALL_TOO_MANY = "That code is not right. For security I will end this call now. Goodbye."
CALL_PASSWORD_INTRO = (
    "Thank you. Here is the password for the files you were sent, reference {reference}. "
    "I will spell it slowly."
)
CALL_REPEAT_PROMPT = "To hear the password again, press 1. Otherwise, you can hang up."
CALL_GOODBYE = "Goodbye."
HEADS_UP_SMS = (
    "{organisation} Safe Haven: you will get an automated call at {time} with the password "
    "for {reference}. Have the 6-digit code from our email ready."
)

RECEIPT_QUEUED = (
    "Transfer {reference}: the password SMS to {phone} is with the network; I will tell you "
    "when it is delivered."
)
RECEIPT_CALLING = "Transfer {reference}: calling {phone} now with the password."
RECEIPT_RETRYING = (
    "Transfer {reference}: the password could not be {how} to {phone} yet ({detail}); "
    "trying again at {when}."
)
RECEIPT_DEAD = (
    "Transfer {reference}: the password could not be {how} to {phone} after {attempts} "
    "({detail}). Check the number with the recipient, then cancel and share again."
)
RECEIPT_NO_ANSWER = "no answer"
RECEIPT_BUSY = "the line was busy"
RECEIPT_MACHINE = "an answering machine picked up, so the password was not read out"
RECEIPT_NO_CODE = "the call was answered but the right code was not keyed in"
RECEIPT_WRONG_CODE = (
    "Transfer {reference}: the person who answered {phone} keyed in a wrong code {count} "
    "times, so the call was ended without the password. Speak to the recipient before "
    "anything else is sent."
)
RECEIPT_INTERRUPTED = (
    "Transfer {reference}: sending the password to {phone} was interrupted and I cannot tell "
    "whether it arrived, so I will not send it again on my own. Ask the recipient; if it did "
    "not arrive, cancel the transfer and share again."
)
RECEIPT_UNCONFIRMED = (
    "Transfer {reference}: Twilio did not confirm in time whether it took the password "
    "to be {how} to {phone}, so it may have gone. I will not send it twice: I am waiting for "
    "Twilio's report, and at {when} I will check with Twilio before trying again."
)
RECEIPT_UNCONFIRMED_UNKNOWN = (
    "Transfer {reference}: Twilio did not confirm whether the password was {how} to {phone}, "
    "and I could not check with Twilio afterwards, so I cannot tell whether it arrived and I "
    "will not send it again on my own. Ask the recipient; if it did not arrive, book a call "
    "with `call {reference} YYYY-MM-DD HH:MM`, or cancel the transfer and share again."
)
RECEIPT_RESTORE_UNKNOWN = (
    "Transfer {reference}: Safe Haven's database was restored from a backup older than its "
    "last records, so the password may already have been {how} to {phone}, and I could not "
    "check with Twilio. I will not send it on my own. Ask the recipient; if it did not "
    "arrive, book a call with `call {reference} YYYY-MM-DD HH:MM`, or cancel the transfer "
    "and share again."
)
RECEIPT_RESTORE_CALL_MADE = (
    "Transfer {reference}: Safe Haven's database was restored from a backup older than its "
    "last records, and Twilio shows a call to {phone} answered since, so I cannot tell "
    "whether the password was read out. I will not call again on my own. Ask the "
    "recipient; if they did not hear it, book a call with `call {reference} YYYY-MM-DD "
    "HH:MM`."
)
# A send held after a restore (password_sends.last_error) while Twilio is asked whether it
# went already; which of the two says what it goes back to if Twilio has no trace of it.
DETAIL_RESTORE_CHECK_DUE = ("database restored from an older backup: checking with Twilio "
                            "whether this went already (then due)")
DETAIL_RESTORE_CHECK_WAITING = ("database restored from an older backup: checking with "
                                "Twilio whether this went already (then waiting for receipt)")
DETAIL_NOT_AT_TWILIO = "Twilio did not answer in time and has no record of it"
DETAIL_CANNOT_CHECK = "Twilio did not confirm it and could not be asked afterwards"
RECEIPT_OPTED_OUT = "the recipient's number has opted out of texts (replied STOP)"
RECIPIENT_ASKS_CALL = (
    "The recipient of {reference} replied asking for a phone call instead of a text. Agree a "
    "time with them, then type `call {reference} YYYY-MM-DD HH:MM`."
)
CALL_BOOKED = "I will phone {phone} with the password for {reference} at {when}."
CALL_NOT_POSSIBLE = "Transfer {reference} no longer holds a password to read out ({status})."
HOW_SMS = "texted"
HOW_VOICE = "read out in a call"
HOW_HEADS_UP = "heads-up text"
