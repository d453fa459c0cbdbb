"""Records every AWS call a Python process makes, for test_permissions.py: put this folder on PYTHONPATH and name a
file in RECORD_AWS_CALLS, and each request botocore signs appends its IAM action (``kinesis:PutRecords``) to it.

Every botocore session registers the recorder, so the clients made from it (the connector's own PutRecords, which
signs through a client's signer, included) emit ``before-sign.<service>.<operation>`` to it.
"""

from __future__ import annotations

import os
from typing import Any

import botocore.session

_RECORD = os.environ.get("RECORD_AWS_CALLS")
#: IAM actions that a call needs besides its own: CreateStream with tags is allowed only with AddTagsToStream too.
_ALSO_NEEDED = {("kinesis", "CreateStream", b'"Tags"'): "kinesis:AddTagsToStream"}


def _note(event_name: str, request: Any = None, **kwargs: Any) -> None:
    _, service, operation = event_name.split(".", 2)
    actions = [f"{service}:{operation}"]
    body = request.data if request is not None and isinstance(request.data, bytes) else b""
    actions += [action for (s, o, mark), action in _ALSO_NEEDED.items() if (s, o) == (service, operation)
                and mark in body]
    assert _RECORD is not None
    with open(_RECORD, "a") as record:
        record.write("".join(f"{action}\n" for action in actions))


if _RECORD:
    _init = botocore.session.Session.__init__

    def _init_and_record(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        _init(self, *args, **kwargs)
        self.register("before-sign", _note)

    botocore.session.Session.__init__ = _init_and_record
