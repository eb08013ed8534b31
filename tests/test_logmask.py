"""Personal data stays out of logs: phone numbers are masked in every record."""

from __future__ import annotations

import logging

import pytest

from ivr.logmask import MaskingFilter, mask_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("caller 13800138000 hung up", "caller 138****00 hung up"),
        ("from +8613912345678", "from +861****78"),
        ("landline 09318123456", "landline 093****56"),
        ("uniqueid 1795346825.0 stays", "uniqueid 1795346825.0 stays"),
        ("order 12349 and 8 digits 20261123", "order 12349 and 8 digits 20261123"),
    ],
)
def test_mask_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_filter_masks_formatted_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.mask")
    caplog.handler.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.mask"):
        logger.info("call from %s", "13800138000")
    assert "13800138000" not in caplog.text
    assert "138****00" in caplog.text
