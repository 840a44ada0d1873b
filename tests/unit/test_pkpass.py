"""The .pkpass package: layout, manifest, pass.json, localisation and the PKCS#7 signature."""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from tests.unit.conftest import PASS_TYPE_ID, TEAM_ID
from walletd.passes.certs import DevCertPaths, write_dev_certs
from walletd.passes.pkpass import (
    PKPASS_MIME,
    PassRenderError,
    PassTemplate,
    TemplateError,
    TemplateNotFoundError,
    build_pkpass,
    list_templates,
    load_template,
    parse_strings,
    render_pass_json,
    verify_pkpass,
)
from walletd.passes.signing import (
    PassSigner,
    PassSignerError,
    inspect_signature,
    load_certificate,
    load_private_key,
)
from walletd.passes.view import CardView

WEB_SERVICE_URL = "http://127.0.0.1:8000/apple/"
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not installed")


def build(view: CardView, signer: PassSigner, root: Path, template: str = "default") -> bytes:
    """Build a pass with a bundled template."""
    return build_pkpass(
        view,
        signer=signer,
        template=load_template(root, template),
        web_service_url=WEB_SERVICE_URL,
    )


def members(data: bytes) -> dict[str, bytes]:
    """Every file of a package, by archive path."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pass_json(data: bytes) -> dict[str, Any]:
    """The parsed pass.json of a package."""
    document: dict[str, Any] = json.loads(members(data)["pass.json"])
    return document


def fields(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every field of a store card, front and back."""
    card = document["storeCard"]
    return [field for section in card.values() for field in section]


def repack(data: bytes, **replaced: bytes) -> bytes:
    """The same package with some files' bytes replaced and nothing re-hashed or re-signed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members(data).items():
            archive.writestr(name, replaced.get(name.replace(".", "_"), content))
    return buffer.getvalue()


def with_pass_json(data: bytes, change: dict[str, Any]) -> bytes:
    """The package with top-level keys of pass.json replaced."""
    document = pass_json(data) | change
    return repack(data, pass_json=json.dumps(document).encode())


@pytest.fixture
def pkpass(card_view: CardView, signer: PassSigner, templates_root: Path) -> bytes:
    """A store card built with the default template and the development certificates."""
    return build(card_view, signer, templates_root)


@pytest.fixture
def unpacked(pkpass: bytes, tmp_path: Path) -> Path:
    """The package extracted to a folder, for the openssl command line."""
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(pkpass)) as archive:
        archive.extractall(folder)
    return folder


def openssl(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the openssl binary and capture its output."""
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *map(str, arguments)], capture_output=True, text=True, check=False, timeout=30
    )


# --- archive layout -----------------------------------------------------------------------------


def test_mime_type_is_apples() -> None:
    assert PKPASS_MIME == "application/vnd.apple.pkpass"


def test_archive_keeps_every_file_at_the_root_without_directory_entries(pkpass: bytes) -> None:
    names = set(members(pkpass))
    required = {"pass.json", "manifest.json", "signature", "icon.png", "icon@2x.png"}
    images = {
        f"{image}{suffix}.png"
        for image in ("icon", "logo", "strip")
        for suffix in ("", "@2x", "@3x")
    }
    strings = {"en.lproj/pass.strings", "zh-Hant.lproj/pass.strings"}
    assert names == required | images | strings
    assert not any(name.endswith("/") or name.startswith(".") for name in names)


def test_archive_passes_its_own_crc_checks(pkpass: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(pkpass)) as archive:
        assert archive.testzip() is None


def test_manifest_lists_every_file_except_itself_and_the_signature(pkpass: bytes) -> None:
    files = members(pkpass)
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}


def test_manifest_holds_the_sha1_of_each_file(pkpass: bytes) -> None:
    files = members(pkpass)
    manifest = json.loads(files["manifest.json"])
    for name, digest in manifest.items():
        assert digest == hashlib.sha1(files[name]).hexdigest(), name


def test_verify_finds_no_problem_in_a_built_pass(pkpass: bytes) -> None:
    assert verify_pkpass(pkpass) == []


def test_verify_detects_one_tampered_byte_of_pass_json(pkpass: bytes) -> None:
    original = members(pkpass)["pass.json"]
    tampered = original.replace(b"1240", b"9240", 1)
    assert tampered != original

    problems = verify_pkpass(repack(pkpass, pass_json=tampered))

    assert "manifest hash mismatch for pass.json" in problems


def test_verify_detects_a_missing_icon(pkpass: bytes) -> None:
    files = members(pkpass)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            if name != "icon.png":
                archive.writestr(name, content)

    problems = verify_pkpass(buffer.getvalue())

    assert "icon.png is missing from the archive root" in problems
    assert "manifest.json lists icon.png but the archive lacks it" in problems


def test_verify_detects_files_inside_a_folder(pkpass: bytes) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members(pkpass).items():
            archive.writestr(f"Card.pass/{name}", content)

    problems = verify_pkpass(buffer.getvalue())

    assert "pass.json is missing from the archive root" in problems


def test_verify_rejects_bytes_that_are_not_a_zip() -> None:
    assert verify_pkpass(b"not a zip")[0].startswith("not a ZIP archive")


# --- pass.json ----------------------------------------------------------------------------------


def test_pass_json_has_every_required_key_and_format_version_one(pkpass: bytes) -> None:
    document = pass_json(pkpass)
    for key in (
        "formatVersion",
        "passTypeIdentifier",
        "serialNumber",
        "teamIdentifier",
        "organizationName",
        "description",
    ):
        assert key in document
    assert type(document["formatVersion"]) is int and document["formatVersion"] == 1
    assert "storeCard" in document


def test_pass_identity_comes_from_the_signer_certificate(
    pkpass: bytes, card_view: CardView
) -> None:
    document = pass_json(pkpass)
    assert document["passTypeIdentifier"] == PASS_TYPE_ID
    assert document["teamIdentifier"] == TEAM_ID
    assert document["serialNumber"] == card_view.serial_number
    assert document["authenticationToken"] == card_view.authentication_token
    assert document["webServiceURL"] == WEB_SERVICE_URL


def test_pass_json_is_compact_utf8(
    card_view: CardView, signer: PassSigner, templates_root: Path
) -> None:
    view = dataclasses.replace(card_view, member_name="陳大文")

    raw = members(build(view, signer, templates_root))["pass.json"]

    assert "陳大文".encode() in raw
    assert b": " not in raw and b"\n" not in raw


def test_barcodes_is_an_array_with_one_qr_code(pkpass: bytes, card_view: CardView) -> None:
    assert pass_json(pkpass)["barcodes"] == [
        {
            "format": "PKBarcodeFormatQR",
            "message": card_view.barcode_message,
            "messageEncoding": "iso-8859-1",
            "altText": card_view.barcode_alt_text,
        }
    ]


def test_colours_are_css_rgb_triplets(pkpass: bytes) -> None:
    document = pass_json(pkpass)
    assert document["backgroundColor"] == "rgb(24, 44, 82)"
    assert document["foregroundColor"] == "rgb(255, 255, 255)"
    assert document["labelColor"] == "rgb(222, 173, 40)"


def test_points_are_a_decimal_number_with_a_change_message(pkpass: bytes) -> None:
    [points] = pass_json(pkpass)["storeCard"]["primaryFields"]
    assert points["key"] == "points"
    assert points["value"] == 1240 and type(points["value"]) is int
    assert points["numberStyle"] == "PKNumberStyleDecimal"
    assert points["changeMessage"] == "You now have %@ points"


def test_member_name_and_tier_sit_on_the_front(pkpass: bytes) -> None:
    card = pass_json(pkpass)["storeCard"]
    assert card["secondaryFields"] == [
        {"key": "member", "label": "member_label", "value": "Ada Lovelace"}
    ]
    [tier] = card["auxiliaryFields"]
    assert (tier["key"], tier["value"], tier["changeMessage"]) == ("tier", "Gold", "You are now %@")


def test_brand_message_is_a_back_field_announced_verbatim(pkpass: bytes) -> None:
    back = {field["key"]: field for field in pass_json(pkpass)["storeCard"]["backFields"]}
    assert back["message"]["value"] == "Double points all weekend"
    assert back["message"]["changeMessage"] == "%@"


def test_message_field_stays_present_and_empty_without_a_message(
    card_view: CardView, signer: PassSigner, templates_root: Path
) -> None:
    view = dataclasses.replace(card_view, message=None)

    back = pass_json(build(view, signer, templates_root))["storeCard"]["backFields"]

    [message] = [field for field in back if field["key"] == "message"]
    assert message["value"] == ""


def test_member_since_is_a_dated_back_field(pkpass: bytes) -> None:
    back = {field["key"]: field for field in pass_json(pkpass)["storeCard"]["backFields"]}
    since = back["member_since"]
    assert since["value"] == "2024-03-01T00:00:00Z"
    assert datetime.fromisoformat(since["value"]).tzinfo is not None
    assert since["dateStyle"] == "PKDateStyleMedium"
    assert since["timeStyle"] == "PKDateStyleNone"


def test_tier_and_member_since_are_left_out_when_unknown(
    card_view: CardView, signer: PassSigner, templates_root: Path
) -> None:
    view = dataclasses.replace(card_view, tier=None, member_since=None)

    document = pass_json(build(view, signer, templates_root))

    keys = {field["key"] for field in fields(document)}
    assert "tier" not in keys and "member_since" not in keys
    assert verify_pkpass(build(view, signer, templates_root)) == []


def test_field_keys_are_unique_across_the_pass(pkpass: bytes) -> None:
    keys = [field["key"] for field in fields(pass_json(pkpass))]
    assert len(keys) == len(set(keys))


def test_every_change_message_contains_the_placeholder(pkpass: bytes) -> None:
    document = pass_json(pkpass)
    changes = [field["changeMessage"] for field in fields(document) if "changeMessage" in field]
    assert len(changes) == 3
    assert all("%@" in change for change in changes)
    for name, content in members(pkpass).items():
        if name.endswith("pass.strings"):
            table = parse_strings(content)
            assert all("%@" in table[change] for change in changes if change != "%@"), name


def test_locations_are_passed_through(pkpass: bytes) -> None:
    assert pass_json(pkpass)["locations"] == [{"latitude": 52.52, "longitude": 13.405}]


def test_template_static_keys_are_kept(pkpass: bytes) -> None:
    document = pass_json(pkpass)
    assert document["sharingProhibited"] is True
    assert "how_it_works" in {field["key"] for field in document["storeCard"]["backFields"]}


def test_each_pass_gets_its_own_copy_of_the_template_skeleton(
    card_view: CardView, templates_root: Path
) -> None:
    template = load_template(templates_root, "default")
    first = render_pass_json(
        card_view, pass_type_id="p", team_id="t", web_service_url="u", template=template
    )
    first["sharingProhibited"] = False
    first["storeCard"]["backFields"][-1]["value"] = "changed"  # type: ignore[index]

    second = render_pass_json(
        card_view, pass_type_id="p", team_id="t", web_service_url="u", template=template
    )

    assert second["sharingProhibited"] is True
    assert second["storeCard"]["backFields"][-1]["value"] == "how_text"  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"authentication_token": "short"}, "authenticationToken"),
        ({"serial_number": "has/slash"}, "serialNumber"),
        ({"background_color": "navy"}, "colour"),
        ({"barcode_message": "碼"}, "ISO-8859-1"),
    ],
)
def test_rendering_refuses_data_ios_would_reject(
    card_view: CardView, templates_root: Path, change: dict[str, Any], error: str
) -> None:
    view = dataclasses.replace(card_view, **change)
    with pytest.raises(PassRenderError, match=error):
        render_pass_json(
            view,
            pass_type_id="p",
            team_id="t",
            web_service_url="u",
            template=load_template(templates_root, "default"),
        )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"barcodes": {"format": "PKBarcodeFormatQR"}}, "pass.json barcodes must be an array"),
        ({"authenticationToken": "tooshort"}, "at least 16 characters"),
        ({"formatVersion": "1"}, "formatVersion must be the number 1"),
        ({"backgroundColor": "#182C52"}, "backgroundColor must be rgb(r, g, b)"),
        (
            {"storeCard": {"primaryFields": [{"key": "a", "value": 1}, {"key": "a", "value": 2}]}},
            "field key 'a' is used more than once",
        ),
        (
            {"storeCard": {"backFields": [{"key": "b", "value": 1, "changeMessage": "Now"}]}},
            "field 'b' has a changeMessage without %@",
        ),
    ],
)
def test_verify_names_each_pass_json_mistake(
    pkpass: bytes, change: dict[str, Any], problem: str
) -> None:
    problems = verify_pkpass(with_pass_json(pkpass, change))
    assert any(problem in found for found in problems), problems


def test_verify_notices_a_pass_type_id_that_is_not_the_signers(pkpass: bytes) -> None:
    problems = verify_pkpass(with_pass_json(pkpass, {"passTypeIdentifier": "pass.other"}))
    assert "passTypeIdentifier does not match the signing certificate" in problems


def test_verify_can_insist_on_https(pkpass: bytes) -> None:
    assert "webServiceURL must use https:// in production" in verify_pkpass(
        pkpass, require_https=True
    )


# --- localisation -------------------------------------------------------------------------------


def test_strings_files_share_keys_and_cover_every_key_used(pkpass: bytes) -> None:
    files = members(pkpass)
    english = parse_strings(files["en.lproj/pass.strings"])
    chinese = parse_strings(files["zh-Hant.lproj/pass.strings"])
    assert english.keys() == chinese.keys()
    used = {
        field[attribute]
        for field in fields(pass_json(pkpass))
        for attribute in ("label", "changeMessage")
        if attribute in field and field[attribute] != "%@"
    }
    assert used <= english.keys()


def test_strings_files_are_utf16_with_a_byte_order_mark(pkpass: bytes) -> None:
    raw = members(pkpass)["zh-Hant.lproj/pass.strings"]
    assert raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    chinese = parse_strings(raw)
    assert chinese["points_label"] == "點數"
    assert chinese["You now have %@ points"] == "您現在有 %@ 點"


def test_strings_parser_reads_utf8_utf16_comments_and_escapes() -> None:
    text = '/* c */\n"a" = "x \\"q\\" \\n";\n// line\n"b"="\\U00e9";\n"點" = "點數";\n'
    expected = {"a": 'x "q" \n', "b": "é", "點": "點數"}
    assert parse_strings(text.encode("utf-8")) == expected
    assert parse_strings(text.encode("utf-16")) == expected
    assert parse_strings(codecs.BOM_UTF8 + text.encode("utf-8")) == expected


def test_strings_parser_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_strings(b'"a" = "b";\n"c" = d;\n')


# --- templates ----------------------------------------------------------------------------------


def test_choosing_the_mono_template_gives_different_images(
    card_view: CardView, signer: PassSigner, templates_root: Path
) -> None:
    default = members(build(card_view, signer, templates_root, "default"))
    mono = members(
        build(dataclasses.replace(card_view, template="mono"), signer, templates_root, "mono")
    )

    assert default.keys() == mono.keys()
    for image in ("icon.png", "icon@2x.png", "logo@3x.png", "strip@2x.png"):
        assert default[image] != mono[image], image
    assert verify_pkpass(build(card_view, signer, templates_root, "mono")) == []


def test_bundled_templates_are_listed(templates_root: Path) -> None:
    assert {"default", "mono"} <= set(list_templates(templates_root))


def test_template_images_are_pngs_with_transparency_at_three_scales(templates_root: Path) -> None:
    # Colour or grey with alpha, or a palette with per-entry alpha (tRNS): what the losslessly
    # optimised images are (scripts/pass_artwork.py); all are PNGs with transparency.
    from PIL import Image

    sizes = {"icon": (29, 29), "logo": (50, 50), "strip": (375, 144)}
    for name in ("default", "mono"):
        template = load_template(templates_root, name)
        for image, (width, height) in sizes.items():
            for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
                with Image.open(io.BytesIO(template.files[f"{image}{suffix}.png"])) as png:
                    assert png.format == "PNG"
                    assert png.mode in ("RGBA", "LA") or "transparency" in png.info
                    assert png.size == (width * scale, height * scale)


def test_templates_are_loaded_once_per_process(templates_root: Path) -> None:
    assert load_template(templates_root, "default") is load_template(templates_root, "default")


def test_template_keeps_precomputed_hashes(templates_root: Path) -> None:
    template = load_template(templates_root, "default")
    for name, data in template.files.items():
        assert template.hashes[name] == hashlib.sha1(data).hexdigest()


@pytest.mark.parametrize("name", ["nope", "../default", "default/..", "Default", ".hidden", ""])
def test_unknown_or_unsafe_template_names_are_not_found(templates_root: Path, name: str) -> None:
    with pytest.raises(TemplateNotFoundError):
        load_template(templates_root, name)


def test_template_loader_skips_dotfiles(templates_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(templates_root / "default", copy)
    (copy / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (copy / "en.lproj" / ".pass.strings.swp").write_bytes(b"swap")

    template = PassTemplate.from_directory(copy)

    assert not any("/." in f"/{name}" for name in template.files)


def test_template_with_mismatched_strings_is_refused(templates_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(templates_root / "default", copy)
    strings = copy / "zh-Hant.lproj" / "pass.strings"
    text = strings.read_bytes().decode("utf-16").replace('"tier_label"', '"tier_lable"')
    strings.write_bytes(text.encode("utf-16"))

    with pytest.raises(TemplateError, match="different keys"):
        PassTemplate.from_directory(copy)


def test_template_may_not_reuse_the_renderers_field_keys(
    templates_root: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(templates_root / "default", copy)
    skeleton = {"storeCard": {"backFields": [{"key": "points", "value": "x"}]}}
    (copy / "pass.json").write_text(json.dumps(skeleton))

    with pytest.raises(TemplateError, match="reserved"):
        PassTemplate.from_directory(copy)


# --- signature ----------------------------------------------------------------------------------


@needs_openssl
def test_openssl_verifies_the_signature_up_to_the_dev_root(
    unpacked: Path, dev_certs: DevCertPaths
) -> None:
    # -purpose any: pass certificates carry no S/MIME key usage, which openssl wants by default.
    result = openssl(
        "cms", "-verify", "-binary", "-inform", "DER",
        "-in", unpacked / "signature", "-content", unpacked / "manifest.json",
        "-CAfile", dev_certs.ca_path, "-purpose", "any", "-out", unpacked / "verified",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (unpacked / "verified").read_bytes() == (unpacked / "manifest.json").read_bytes()


@needs_openssl
def test_openssl_verifies_the_signed_content_without_a_chain(unpacked: Path) -> None:
    result = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-noverify",
        "-in", unpacked / "signature", "-content", unpacked / "manifest.json", "-out", "/dev/null",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@needs_openssl
def test_openssl_rejects_the_signature_over_another_manifest(unpacked: Path) -> None:
    other = unpacked / "other.json"
    other.write_bytes((unpacked / "manifest.json").read_bytes().replace(b"a", b"b", 1))
    result = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-noverify",
        "-in", unpacked / "signature", "-content", other, "-out", "/dev/null",
    )  # fmt: skip
    assert result.returncode != 0


@needs_openssl
def test_signature_is_detached_and_carries_a_signing_time(unpacked: Path) -> None:
    result = openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", unpacked / "signature")
    assert result.returncode == 0, result.stderr
    assert "eContent: <ABSENT>" in result.stdout
    assert "signingTime" in result.stdout
    assert "messageDigest" in result.stdout
    assert "sha256" in result.stdout


def test_signature_embeds_the_signer_and_the_wwdr_intermediate(
    pkpass: bytes, signer: PassSigner
) -> None:
    embedded = pkcs7.load_der_pkcs7_certificates(members(pkpass)["signature"])
    assert {signer.certificate, signer.wwdr} <= set(embedded)


def test_inspection_finds_a_fresh_signing_time_and_no_problem(pkpass: bytes) -> None:
    files = members(pkpass)

    info = inspect_signature(files["signature"], files["manifest.json"])

    assert info.problems == ()
    assert info.detached
    assert info.signing_time is not None
    assert abs(datetime.now(UTC) - info.signing_time) < timedelta(minutes=5)


def test_inspection_notices_an_attached_signature_without_attributes(
    dev_certs: DevCertPaths, signer: PassSigner
) -> None:
    manifest = b'{"pass.json":"0"}'
    # What edutap-style code produces: the manifest embedded, and no signingTime.
    attached = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(signer.certificate, load_private_key(dev_certs.key_path, None), hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.NoAttributes])
    )

    problems = inspect_signature(attached, manifest).problems

    assert any("attached" in problem for problem in problems)
    assert any("signingTime" in problem for problem in problems)


@pytest.mark.parametrize("position", [0, 20, 40, 300, 1500, 2400, -300, -5])
def test_a_damaged_signature_is_reported_not_raised(pkpass: bytes, position: int) -> None:
    signature = bytearray(members(pkpass)["signature"])
    signature[position] ^= 0x5A

    problems = verify_pkpass(repack(pkpass, signature=bytes(signature)))

    assert problems


def test_a_truncated_signature_is_reported_not_raised(pkpass: bytes) -> None:
    signature = members(pkpass)["signature"][:700]
    assert verify_pkpass(repack(pkpass, signature=signature))


def test_verify_notices_a_wwdr_that_did_not_issue_the_signer(
    dev_certs: DevCertPaths, card_view: CardView, templates_root: Path, tmp_path: Path
) -> None:
    stranger = write_dev_certs(tmp_path, pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID)
    mismatched = PassSigner.from_files(
        cert_path=dev_certs.cert_path,
        key_path=dev_certs.key_path,
        key_password=None,
        wwdr_path=stranger.wwdr_path,
    )

    problems = verify_pkpass(build(card_view, mismatched, templates_root))

    assert problems == ["the signer certificate does not verify with the embedded intermediate"]


def test_signer_reads_its_identity_from_the_certificate(signer: PassSigner) -> None:
    assert (signer.pass_type_id, signer.team_id) == (PASS_TYPE_ID, TEAM_ID)


def test_signer_refuses_a_key_that_is_not_the_certificates(
    dev_certs: DevCertPaths, tmp_path: Path
) -> None:
    other = write_dev_certs(tmp_path / "other")
    with pytest.raises(PassSignerError, match="does not belong"):
        PassSigner.from_files(
            cert_path=dev_certs.cert_path,
            key_path=other.key_path,
            key_password=None,
            wwdr_path=dev_certs.wwdr_path,
        )


def test_signer_reports_unreadable_files(dev_certs: DevCertPaths, tmp_path: Path) -> None:
    with pytest.raises(PassSignerError, match="cannot load"):
        PassSigner.from_files(
            cert_path=tmp_path / "missing.pem",
            key_path=dev_certs.key_path,
            key_password=None,
            wwdr_path=dev_certs.wwdr_path,
        )


def test_signer_accepts_a_der_wwdr_as_apple_distributes_it(
    dev_certs: DevCertPaths, tmp_path: Path
) -> None:
    wwdr = load_certificate(dev_certs.wwdr_path)
    der = tmp_path / "AppleWWDRCAG4.cer"
    der.write_bytes(wwdr.public_bytes(serialization.Encoding.DER))

    signer = PassSigner.from_files(
        cert_path=dev_certs.cert_path,
        key_path=dev_certs.key_path,
        key_password=None,
        wwdr_path=der,
    )

    assert signer.wwdr == wwdr
