"""The report's labels: every key in both languages, with the same placeholders."""

from __future__ import annotations

import re

from truckcarbon.report.i18n import LANGS, T


def test_every_label_has_both_languages_with_the_same_placeholders():
    assert set(LANGS) == {"zh", "en"}
    for key, labels in T.items():
        assert set(labels) == set(LANGS), key
        assert all(labels[lang].strip() for lang in LANGS), key
        holes = {lang: sorted(re.findall(r"\{(\w*)[^}]*\}", labels[lang])) for lang in LANGS}
        assert holes["zh"] == holes["en"], (key, holes)


def test_chinese_labels_are_chinese():
    chinese = [k for k, v in T.items() if re.search(r"[\u4e00-\u9fff]", v["zh"])]
    assert len(chinese) >= 0.8 * len(T)
