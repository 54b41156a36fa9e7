"""Response headers read without the email package, for the calls between nodes.

http.client reads a response's headers into an `HTTPMessage` through the email
package's feed parser: about 21 us a response here, 4-5 % of an order server's
and a front-end's CPU per buy (py-spy), for six or seven plain header lines from
gunicorn. `parse_headers` builds the same message (the same header list, in
order, with the values as the parser keeps them) for lines of plain
`Name: value`, in about 5 us, and hands anything else (a folded line, a line
with no name or colon) to the standard parser unchanged. A node installs it
(`common.server.serve`); nothing else in a node reads headers any other way.
"""

from __future__ import annotations

import email.parser
import http.client
import re

# What the feed parser takes as a header name (email.feedparser's headerRE).
_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+\Z")


def parse_headers(fp, _class=http.client.HTTPMessage):
    """`http.client.parse_headers`, the same message for plain header lines."""
    lines = http.client._read_headers(fp)  # its limits: line length, header count
    message = _class()
    for line in lines[:-1]:  # the last is the blank line (or EOF)
        name, colon, value = line.partition(b":")
        if not colon or not _NAME.match(name):
            text = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=_class).parsestr(text)
        # As the parser's compat32 policy keeps a value: leading blanks and the
        # line end go, anything else stays.
        value = value.decode("iso-8859-1").lstrip(" \t").rstrip("\r\n")
        message.set_raw(name.decode("iso-8859-1"), value)
    message.set_payload("")  # the parser's payload after the blank line
    return message


def install() -> None:
    """Every http.client response in this process reads its headers here."""
    http.client.parse_headers = parse_headers
