"""Where ``ntm login`` keeps the server's URL and the credential.

One JSON file, ``credentials.json``, in the user's config directory
(``platformdirs``: ``~/.config/ntm`` on Linux, ``~/Library/Application
Support/ntm`` on macOS, ``%APPDATA%\\ntm`` on Windows; ``NTM_CONFIG_DIR``
overrides it). The directory is made 0700 and the file 0600 from its
creation (written under a temporary name opened with that mode, then renamed),
so the token is never readable by other users, not even for an instant.
``NTM_URL`` and ``NTM_TOKEN`` override what is stored (for CI jobs).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

DEFAULT_URL = "http://localhost:8000"
FILE_NAME = "credentials.json"


class NotSignedIn(Exception):
    """No usable credential: the message says what to do."""


@dataclass
class Credentials:
    url: str
    token: str
    kind: str  # "api_key" or "jwt"
    email: str | None = None
    expires_at: str | None = None  # ISO 8601, JWTs only


def config_dir() -> Path:
    override = os.environ.get("NTM_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir("ntm"))


def credentials_path() -> Path:
    return config_dir() / FILE_NAME


def save(credentials: Credentials) -> Path:
    """Write the credentials with mode 0600 (and the directory 0700); return the file."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / FILE_NAME
    temporary = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(asdict(credentials), file, indent=2)
        os.chmod(temporary, 0o600)  # an existing file of that name kept its old mode
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def load_stored() -> Credentials | None:
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise NotSignedIn(f"{path} is unreadable ({exc}); run `ntm login` again") from None


def remove() -> bool:
    path = credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def server_url() -> str:
    """The server to talk to: NTM_URL, else the stored one, else the local default."""
    if url := os.environ.get("NTM_URL"):
        return url.rstrip("/")
    stored = load_stored()
    return stored.url if stored else DEFAULT_URL


def current() -> Credentials:
    """The credential to use now; NotSignedIn when there is none or it expired."""
    url = server_url()
    if token := os.environ.get("NTM_TOKEN"):
        return Credentials(url=url, token=token, kind="env")
    stored = load_stored()
    if stored is None:
        raise NotSignedIn("not signed in: run `ntm login` (or set NTM_TOKEN)")
    if stored.expires_at and datetime.fromisoformat(stored.expires_at) <= datetime.now(UTC):
        raise NotSignedIn("the sign-in has expired: run `ntm login` again (an API key never does)")
    stored.url = url
    return stored
