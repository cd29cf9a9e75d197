"""scripts/side_by_side.py: the demo's content | style | result picture."""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))
import side_by_side  # noqa: E402


def flat(path, size, colour):
    Image.new("RGB", size, colour).save(path)
    return str(path)


def test_each_picture_at_the_results_height_in_order_with_white_gaps(tmp_path):
    content = flat(tmp_path / "c.png", (40, 20), (255, 0, 0))    # 2:1, becomes 60x30
    style = flat(tmp_path / "s.jpg", (10, 30), (0, 0, 255))      # 1:3, becomes 10x30
    result = flat(tmp_path / "r.png", (45, 30), (0, 255, 0))
    out = tmp_path / "sheet.png"
    assert side_by_side.main([content, style, result, "-o", str(out), "--gap", "5"]) == 0
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert sheet.shape == (30, 60 + 5 + 10 + 5 + 45, 3)
    middle = sheet[15]
    for x, colour in ((30, (255, 0, 0)), (62, (255, 255, 255)), (70, (0, 0, 255)), (77, (255, 255, 255)),
                      (100, (0, 255, 0))):
        assert np.abs(middle[x] - colour).max() <= 3, (x, middle[x])


def test_height_option_and_a_missing_image_is_one_line_and_writes_nothing(tmp_path, capsys):
    a = flat(tmp_path / "a.png", (20, 20), (9, 9, 9))
    out = tmp_path / "sheet.png"
    assert side_by_side.main([a, a, "-o", str(out), "--height", "12"]) == 0
    assert Image.open(out).size == (12 + 8 + 12, 12)
    out.unlink()
    assert side_by_side.main([a, str(tmp_path / "missing.png"), "-o", str(out)]) == 3
    error = capsys.readouterr().err
    assert error.startswith("side_by_side: error:") and error.count("\n") == 1 and "missing.png" in error
    assert not out.exists()
