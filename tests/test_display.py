"""How values read in tables: a parameter left at None is written, not blank."""
from aiaas_jupyter.display import Table, fmt


def test_none_inside_params_reads_as_none_and_an_empty_cell_stays_blank():
    params = {"n_estimators": 100, "max_depth": None, "class_weight": None, "ccp_alpha": 0.0}
    assert fmt(params) == "n_estimators=100, max_depth=None, class_weight=None, ccp_alpha=0"
    assert fmt([1, None]) == "1, None"
    assert fmt(None) == ""
    table = Table(["field", "value"], [("params", params), ("job", None)])
    assert "max_depth=None" in repr(table) and "max_depth=None" in table._repr_html_()
    assert "max_depth=," not in repr(table) and "max_depth=<" not in table._repr_html_()
