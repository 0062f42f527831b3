"""What ``safehaven rotate-key`` says (docs/operations.md, "Key rotation")."""

from __future__ import annotations

HELP = ("re-seal everything an earlier SAFEHAVEN_SECRET_KEY sealed under the current one, "
        "and link the audit trail's keys")
CHECK_HELP = "change nothing: only report what is still sealed under an earlier key"
STARTING = ("Current key {key_id}; {previous} configured "
            "(SAFEHAVEN_PREVIOUS_SECRET_KEYS).")
COUNT = ("{kind:<14} {resealed:>6} re-sealed  {current:>6} already current  "
         "{unopenable:>6} cannot be opened")
PORTAL_LINKS = ("portal links   nothing to re-seal: only a SHA-256 of each link's token is "
                "kept, no key is involved (live links keep working)")
FINGERPRINTS = ("near misses    refused addresses are kept only as one-way keyed "
                "fingerprints in the audit trail; they cannot be re-keyed (each names its key)")
AUDIT_LINKED = ("audit trail    {checkpoints} written to {anchor}, signed by "
                "key {key_id}: the records and checkpoints made under earlier keys verify "
                "without them")
AUDIT_ALREADY = "audit trail    already linked to key {key_id}: nothing to write"
AUDIT_BROKEN = ("audit trail    NOT linked: {problem}. If it names a key that is not "
                "configured, add that key to SAFEHAVEN_PREVIOUS_SECRET_KEYS and run "
                "`safehaven rotate-key` again.")
UNOPENABLE = ("{values} could not be opened with any configured key: sealed "
              "under a key that is not configured, or damaged. Add the key that sealed "
              "them to SAFEHAVEN_PREVIOUS_SECRET_KEYS and run `safehaven rotate-key` again; "
              "do not remove any previous key yet.")
LEFT = ("NOT done: {left} still sealed under an earlier key ({where}). Keep the previous "
        "keys configured and run `safehaven rotate-key` again.")
MISSING = ("NOT done: {missing} of the {referenced} objects the database refers to are not "
           "in the object store {store}. This command must run with the services' settings "
           "(the same SAFEHAVEN_VAR_DIR or SAFEHAVEN_OBJECT_STORE) and as their user: "
           "docs/operations.md, \"Admin commands\". Keep the previous keys configured.")
DONE_NO_PREVIOUS = ("Verified: nothing is sealed under an earlier key and the audit trail "
                    "verifies with the current key alone.")
DONE = ("Verified: nothing is left sealed under an earlier key and the audit trail verifies "
        "without them. You can now remove SAFEHAVEN_PREVIOUS_SECRET_KEYS ({ids}) "
        "from every process's settings and restart them.")
