"""What ``safehaven share`` says when its flags leave a recorded answer open or give one the
policy does not offer: the option, and what it may be."""

FLAG_REQUIRED = "{flag} is required: one of {choices}"
FLAG_REQUIRED_FREE = "{flag} is required: {what}"
FLAG_NOT_ONE_OF = "{flag} {value!r} is not one of {choices}"
FLAG_NOT_FOR_LEVEL = "{flag} {value!r} is not allowed for {level}: one of {choices}"
CALL_AT_REQUIRED = (
    "--call-at is required with --password-via voice: the date and time agreed with the "
    "recipient, e.g. {example}"
)
DELETE_AFTER_USE_WHAT = (
    "confirm the recipient will be told to delete the information once it has been used"
)
ONWARD_WHAT = "yes or no: whether the recipient may share it onward"
# An answer the conversation refused, said with the option that gave it.
FLAG_REFUSED = "{flag}: {error}"
FLAG_REFUSED_CHOICES = "{flag}: {error} Choices: {choices}"
# A way out of the question that is not a value of its flag ("change the phone").
FLAG_OR_CHANGE = " (or change {flag})"
