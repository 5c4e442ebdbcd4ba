"""mkdocs hooks: pages written for GitHub (README, benchmark plots beside the results) also build as a site.

- The benchmark plots live in ``benchmarks/results/plots`` (where the runner writes them); they are added
  to the site as ``benchmarks-plots/`` and the pages' ``../benchmarks/results/plots/`` links follow them.
- ``changelog.md`` and ``models.md`` include ``CHANGELOG.md`` and the bundled weights' model card.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ROOT / "benchmarks" / "results" / "plots"


def on_files(files, config):
    for png in sorted(PLOTS.glob("*.png")):
        files.append(
            File(
                f"benchmarks-plots/{png.name}",
                src_dir=str(PLOTS.parent),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
        files.get_file_from_path(f"benchmarks-plots/{png.name}").abs_src_path = str(png)
    return files


def on_page_markdown(markdown, page, config, files):
    markdown = markdown.replace("../benchmarks/results/plots/", "benchmarks-plots/")
    if page.file.src_uri == "changelog.md":
        markdown = (ROOT / "CHANGELOG.md").read_text()
    elif page.file.src_uri == "models.md":
        card = (ROOT / "dynamix_forecasting" / "weights" / "README.md").read_text()
        markdown = markdown.replace("<!-- model card -->", card.replace("# Bundled", "## Bundled", 1))
    return markdown
