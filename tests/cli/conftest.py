from tests.cli.fixtures import fake_remote, live, ntm, signed_in, user

__all__ = ["fake_remote", "live", "ntm", "signed_in", "user"]
