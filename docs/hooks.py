"""mkdocs hooks: pages written for GitHub (README, benchmark plots beside the results) also build as a site.

- The benchmark plots live in ``benchmarks/<run>/plots`` (where the runner writes them); they are added to
  the site and the pages' ``../benchmarks/<run>/plots/`` links follow them.
- ``changelog.md`` and ``models.md`` include ``CHANGELOG.md`` and the bundled weights' model card.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
#: Plot folders of committed benchmark runs -> where they appear on the site.
PLOTS = {"results/leaderboard": "benchmarks-plots", "results/speed": "benchmarks-speed-plots"}


def on_files(files, config):
    for run, target in PLOTS.items():
        folder = ROOT / "benchmarks" / run / "plots"
        for png in sorted(folder.glob("*.png")):
            uri = f"{target}/{png.name}"
            files.append(
                File(
                    uri,
                    src_dir=str(folder.parent),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
            files.get_file_from_path(uri).abs_src_path = str(png)
    return files


def on_page_markdown(markdown, page, config, files):
    for run, target in PLOTS.items():
        markdown = markdown.replace(f"../benchmarks/{run}/plots/", f"{target}/")
    if page.file.src_uri == "changelog.md":
        markdown = (ROOT / "CHANGELOG.md").read_text()
    elif page.file.src_uri == "models.md":
        card = (ROOT / "dynamix_forecasting" / "weights" / "README.md").read_text()
        markdown = markdown.replace("<!-- model card -->", card.replace("# Bundled", "## Bundled", 1))
    return markdown
