"""A month's settlement as files: the vendors' statements and the subsidy report by category,
each as CSV (UTF-8 with a byte-order mark, for spreadsheets) and as XLSX (xlsxwriter in
constant-memory mode). Amounts are yuan with two decimals, exact."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import xlsxwriter

from dispatch.ledger import yuan
from dispatch.settlement import Settlement

VENDOR_COLUMNS = ("vendor_id", "vendor", "orders", "amount_yuan", "vouchers_yuan", "own_yuan",
                  "upheld_complaints", "deduction_yuan", "payable_yuan")
CATEGORY_COLUMNS = ("category", "elders", "orders", "vouchers_yuan", "own_yuan")


def _money(fen: int) -> str:
    return f"{yuan(fen):.2f}"


def vendor_rows(report: Settlement) -> list[list[object]]:
    return [[v.vendor_id, v.vendor, v.orders, _money(v.amount_fen), _money(v.vouchers_fen),
             _money(v.own_fen), v.upheld_complaints, _money(v.deduction_fen),
             _money(v.payable_fen)] for v in report.vendors]


def category_rows(report: Settlement) -> list[list[object]]:
    return [[c.category, c.elders, c.orders, _money(c.vouchers_fen), _money(c.own_fen)]
            for c in report.categories]


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Sequence[str], list[list[object]]]]
          ) -> None:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        for name, header, rows in sheets:
            sheet = book.add_worksheet(name)
            sheet.write_row(0, 0, header)
            for number, row in enumerate(rows, start=1):
                sheet.write_row(number, 0, row)
    finally:
        book.close()


def write_settlement(report: Settlement, folder: Path) -> list[Path]:
    """Write the month's files into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"settlement-{report.county}-{report.month}"
    vendors, categories = vendor_rows(report), category_rows(report)
    paths = [folder / f"{stem}-vendors.csv", folder / f"{stem}-subsidy.csv",
             folder / f"{stem}.xlsx"]
    write_csv(paths[0], VENDOR_COLUMNS, vendors)
    write_csv(paths[1], CATEGORY_COLUMNS, categories)
    write_xlsx(paths[2], [("vendors", VENDOR_COLUMNS, vendors),
                     ("subsidy", CATEGORY_COLUMNS, categories)])
    return paths
