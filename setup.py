"""The build compiles flowtest's translations: every locale/*/LC_MESSAGES/*.po
becomes the .mo beside it in the wheel (Babel's compiler), so the catalogs
are built from their sources and never committed compiled. Everything else
about the package is in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LOCALE = Path("flowtest") / "i18n" / "locale"


class BuildWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
            target = Path(self.build_lib) / po.with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as f:
                catalog = read_po(f, locale=po.parts[-3])
            if any(m.fuzzy for m in catalog if m.id):
                raise SystemExit(f"{po}: fuzzy entries; translate them before building")
            with target.open("wb") as f:
                write_mo(f, catalog)


setup(cmdclass={"build_py": BuildWithCatalogs})
