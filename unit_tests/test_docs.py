"""The user documentation (docs/kinesis.md) and icon.svg stay in step with the connector they describe."""

from __future__ import annotations

import json
import re
import runpy
import xml.etree.ElementTree as ElementTree

import yaml

from unit_tests.paths import REPO_ROOT, RESOURCES

DOC = (REPO_ROOT / "docs" / "kinesis.md").read_text()
METADATA = yaml.safe_load((REPO_ROOT / "metadata.yaml").read_text())["data"]
SPEC = json.loads((REPO_ROOT / "spec.json").read_text())["connectionSpecification"]


def section(title: str) -> str:
    """The text of the level-2 section ``## title``, up to the next level-2 heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.MULTILINE | re.DOTALL)
    assert match, f"docs/kinesis.md has no section '{title}'"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body row of the Markdown tables in ``text``."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.lstrip().startswith("|")]
    return [row for row in rows if not all(set(cell) <= set(":-") for cell in row)][1:]


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_changelog_starts_with_the_released_version() -> None:
    first = table_rows(section("Changelog"))[0]
    assert first[0] == METADATA["dockerImageTag"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", first[1])
    (rewrite,) = [row for row in table_rows(section("Changelog")) if row[0] == "1.0.0"]
    assert "0.1.5" in rewrite[3] and "#migrating-from-015" in rewrite[3], "the rewrite's entry explains the migration"


def test_configuration_reference_lists_every_spec_field() -> None:
    keys = {row[1].strip("`") for row in table_rows(section("Configuration reference"))}
    assert keys == set(SPEC["properties"])


def test_configuration_reference_is_generated_from_the_spec() -> None:
    """The table is what scripts/docs_config_table.py makes of spec.json (run it after changing the spec)."""
    generator = runpy.run_path(str(REPO_ROOT / "scripts" / "docs_config_table.py"))
    assert generator["regenerated"](DOC, json.loads((REPO_ROOT / "spec.json").read_text())) == DOC


def test_links_within_the_page_reach_a_heading() -> None:
    headings = {anchor(line.lstrip("#")) for line in DOC.splitlines() if line.startswith("#")}
    links = set(re.findall(r"\]\(#([^)]+)\)", DOC))
    assert links and links <= headings, f"no heading for {sorted(links - headings)}"


def test_readme_links_the_user_documentation() -> None:
    assert "](docs/kinesis.md)" in (REPO_ROOT / "README.md").read_text()


def test_icon_is_a_square_svg() -> None:
    root = ElementTree.parse(REPO_ROOT / "icon.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    _, _, width, height = (float(value) for value in root.attrib["viewBox"].split())
    assert width == height > 0


def test_changelog_names_every_option_added_since_0_1_5() -> None:
    java = json.loads((RESOURCES / "java-0.1.5-spec.json").read_text())
    added = set(SPEC["properties"]) - set(java["connectionSpecification"]["properties"])
    releases = " ".join(row[3] for row in table_rows(section("Changelog")) if row[0] != "0.1.5")
    assert added and not {key for key in added if f"`{key}`" not in releases}


def documented_actions() -> set[str]:
    """The IAM actions of the permissions table under Prerequisites (integration_tests/test_permissions.py checks
    them against the calls the connector makes)."""
    return {row[0].strip("`") for row in table_rows(section("Prerequisites")) if row[0].startswith("`")}


def test_example_policy_allows_exactly_the_documented_kinesis_actions() -> None:
    (policy_text,) = re.findall(r"```json\n(.*?)```", section("Prerequisites"), re.DOTALL)
    allowed: set[str] = set()
    for statement in json.loads(policy_text)["Statement"]:
        actions = statement["Action"]
        allowed.update([actions] if isinstance(actions, str) else actions)
    assert allowed == {action for action in documented_actions() if action.startswith("kinesis:")}
    assert "sts:AssumeRole" in documented_actions()


def test_readme_gives_the_documented_policy() -> None:
    """README's "Point it at a real AWS account" shows the policy of the page's Prerequisites, not another."""
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("### Point it at a real AWS account")
    (readme_policy,) = re.findall(r"```json\n(.*?)```", readme[start:], re.DOTALL)[:1]
    (doc_policy,) = re.findall(r"```json\n(.*?)```", section("Prerequisites"), re.DOTALL)
    assert json.loads(readme_policy) == json.loads(doc_policy)
