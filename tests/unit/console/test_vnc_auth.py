"""VNC authentication: our DES answer is the one a real VNC client computes."""

from vncdotool.rfb import _vnc_des, des_encrypt

from novalet.console import vnc_auth


def test_response_matches_vncdotool_client() -> None:
    challenge = bytes(range(16))
    for password in ("a", "password", "Ab3dE6gH", "longer-than-eight"):
        expected = des_encrypt(_vnc_des(password), challenge)
        assert vnc_auth.response(password, challenge) == expected
        assert vnc_auth.matches(password, challenge, expected)


def test_wrong_password_or_challenge_does_not_match() -> None:
    challenge = vnc_auth.challenge()
    answer = vnc_auth.response("right123", challenge)
    assert len(challenge) == 16 and len(answer) == 16
    assert not vnc_auth.matches("wrong123", challenge, answer)
    assert not vnc_auth.matches("right123", vnc_auth.challenge(), answer)
