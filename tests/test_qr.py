"""The Wi-Fi code's text (the WIFI: scheme phones' cameras read), read back as a phone does and
decoded from the pixels of the rendered code."""

from __future__ import annotations

import cv2
from hypothesis import given
from hypothesis import strategies as st

from booth.station.qr import Wifi, qr_image, qr_matrix


def parse_wifi(text: str) -> dict[str, str]:
    """Read a WIFI: code by ZXing's rules (which Android's and iOS's cameras follow): each
    field ends at an unescaped ';', a backslash takes the next character as it is, and the
    code ends with an empty field."""
    assert text.startswith("WIFI:") and text.endswith(";;"), text
    fields: dict[str, str] = {}
    field, chars = "", iter(text[len("WIFI:"):-1])
    for c in chars:
        if c == "\\":
            field += next(chars)
        elif c == ";":
            key, _, value = field.partition(":")
            assert key not in fields, text
            fields[key] = value
            field = ""
        else:
            field += c
    assert field == "", text  # nothing after the last ';' (an escaped final ';' would be)
    return fields


def test_the_payload_escapes_what_the_scheme_reserves():
    wifi = Wifi('Museum "Guest"; 2.4', "a\\b:c,d;e")
    assert wifi.payload == r'WIFI:T:WPA;S:Museum \"Guest\"\; 2.4;P:a\\b\:c\,d\;e;;'
    assert parse_wifi(wifi.payload) == {"T": "WPA", "S": 'Museum "Guest"; 2.4',
                                        "P": "a\\b:c,d;e"}


def test_an_open_or_hidden_network():
    assert Wifi("Museum").payload == "WIFI:T:nopass;S:Museum;;"
    assert Wifi("Museum", "marsrover", hidden=True).payload == \
        "WIFI:T:WPA;S:Museum;P:marsrover;H:true;;"


@given(st.text(min_size=1, max_size=32), st.text(max_size=63), st.booleans())
def test_any_name_and_password_read_back_as_they_are(ssid, password, hidden):
    fields = parse_wifi(Wifi(ssid, password, hidden).payload)
    assert fields.pop("S") == ssid
    assert fields.pop("T") == ("WPA" if password else "nopass")
    assert fields.pop("P", "") == password
    assert fields.pop("H", "false") == str(hidden).lower()
    assert fields == {}


def test_the_code_decodes_to_the_payload_with_names_in_any_script():
    for wifi in (Wifi('Museum "Guest"; 2.4', "mars:rover,2026\\"), Wifi("Musée Café"),
                 Wifi("火星博物馆", "12345678", hidden=True)):
        decoded, _, _ = cv2.QRCodeDetector().detectAndDecode(qr_image(qr_matrix(wifi.payload), 400))
        assert decoded == wifi.payload
