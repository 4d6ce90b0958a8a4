"""The scim2-tester conformance checker (``scim2 test``) passes every check against a live server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.scim.conftest import ScimClient

SCIM2 = Path(sys.executable).with_name("scim2")


def test_scim2_conformance_checker_passes_every_check(live_server: Any, scim: ScimClient) -> None:
    env = dict(os.environ, SCIM_CLI_HEADERS=f"Authorization: Bearer {scim.token}")
    result = subprocess.run(
        [str(SCIM2), "--url", f"{live_server.url}/scim/v2", "test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert "SUCCESS" in output, output
    assert "ERROR" not in output, output
    assert result.returncode == 0, output
