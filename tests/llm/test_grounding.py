"""The grounding check: figures the tools gave pass, invented ones do not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from assistant_llm.grounding import Evidence, check, extract_figures, money_formatted

AMOUNTS = [Decimal(str(n)) for n in (142450.5, 78000, 63951.5, 63000, 38500, 418252, 780000, 121550)]
EVIDENCE = Evidence(amounts=AMOUNTS, counts=[12, 150])
EVIDENCE.add_share(Decimal("142450.5"), Decimal(418252))  # transport's share of money out
EVIDENCE.add_change(Decimal("142450.5"), Decimal(121550))  # transport against the month before


@pytest.mark.parametrize(
    "answer",
    [
        "You spent ₦142,450.50 on transport last month.",
        "Transport came to ₦142,451 and food to ₦63,951.50.",  # rounded to the naira
        "Food and bills together: ₦126,951.50.",  # a sum of two tool figures
        "Transport rose by ₦20,900.50 from the month before.",  # a difference of two
        "Transport was 34% of your spending.",  # 142450.5 / 418252
        "Transport went up 17% compared with before.",  # (142450.5 - 121550) / 121550
        "You spent about ₦142k on transport and ₦78k went to savings.",  # shorthand within its rounding
        "You spent N63000 on bills in March 2025, 150 payments in all.",
        "Money in was 780,000 naira.",
        "No figures here, just keep an eye on rides.",
        # the same figures in words
        "You spent about one hundred and forty two thousand naira on transport.",  # ±₦500, like "142 thousand"
        "Savings got seventy-eight thousand naira and bills sixty three thousand.",
        "Money in was seven hundred and eighty thousand naira, money out four hundred and eighteen thousand.",
        "Transport was thirty four percent of your spending, up seventeen per cent.",
        "You made one hundred and fifty payments, twelve of them to Uber.",
        "Food came to sixty-three thousand nine hundred and fifty-one naira fifty kobo.",
        "About zero point seven eight million came in.",
        "Your third payment this month was the first since two thousand and twenty four.",  # ordinals, a year
        "You spend thousands of naira on rides every week.",  # vague, not a figure
    ],
)
def test_answers_built_from_tool_figures_are_grounded(answer):
    assert check(answer, EVIDENCE).grounded, extract_figures(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "You spent ₦150,000 on transport.",  # not a tool figure
        "Transport, food and bills came to ₦269,402.",  # a sum of three: not allowed
        "Transport was 50% of your spending.",
        "Food was 15% of your spending.",  # true, but no tool result said so
        "You made 151 payments.",
        "You spent ₦150 on it.",  # a count is not an amount
        "You could save ₦25,000 a month on rides.",  # a projection
        "You spent 99,999 on food.",  # unmarked but large
        "You spent ₦142,450.75 on transport.",  # written to the kobo, so it must match to the kobo
        "Food was about ₦64k and shopping ₦3.5m.",
        # invented figures in words are invented all the same
        "You spent forty thousand naira on food.",
        "You could save twenty five thousand a month on rides.",
        "Your balance is one point five million naira.",
        "Ten million naira is waiting in your savings.",
        "Transport was fifty percent of your spending.",
        "You made one hundred and fifty one payments.",
        "You spent ₦142,450.50 on transport and forty-five thousand on food.",  # one honest, one not
        "You spent one hundred and forty two thousand four hundred naira on transport.",  # to the naira: ₦50 off
    ],
)
def test_invented_figures_are_caught(answer):
    result = check(answer, EVIDENCE)
    assert not result.grounded
    assert result.invented


def test_dates_times_years_and_small_counts_are_not_amounts():
    text = "On 15 Mar 2025 at 14:05 (2025-03-15) you made 3 payments in 2024 style."
    assert extract_figures(text) == []


def test_figures_read_with_their_precision():
    [exact, rounded, thousands] = extract_figures("₦12,345.50, ₦12,346 and ₦12.3k")
    assert exact.value == Decimal("12345.50") and exact.tolerance < Decimal("0.02")
    assert rounded.value == Decimal("12346") and rounded.tolerance < Decimal("0.51")
    assert thousands.value == Decimal("12300") and thousands.tolerance == Decimal("50.001")


def test_plain_naira_amounts_are_written_the_bank_way():
    assert money_formatted("You spent N12345 and 45,000.00 naira, NGN 500.5 on airtime and ₦3,000 on data.", "NGN") == (
        "You spent ₦12,345 and ₦45,000, ₦500.50 on airtime and ₦3,000 on data."
    )
    assert money_formatted("about ₦12.3k", "NGN") == "about ₦12.3k"  # shorthand is left as the model wrote it


def test_a_figure_may_be_twice_an_amount_only_if_it_was_returned_twice():
    assert check("Two DStv renewals: ₦38,000.", [19000, 19000]).grounded
    assert not check("Two DStv renewals: ₦38,000.", [19000]).grounded
    assert check("₦38,000 less than before", [57000, 19000]).grounded


def test_no_evidence_means_no_figure_passes():
    assert not check("You spent ₦1,000.", []).grounded
    assert check("You have not spent much.", []).grounded


def test_figures_in_words_are_read_with_their_precision_and_kept_as_written():
    [forty, one_and_half, exact, share] = extract_figures(
        "forty thousand naira, one point five million, one hundred and two naira and fifty percent")
    assert (forty.value, forty.tolerance, forty.naira_marked, forty.in_words) == (40000, Decimal("400.001"), True, True)
    assert one_and_half.value == 1_500_000 and one_and_half.tolerance == Decimal("15000.001")  # 1%, not ±50,000
    assert exact.value == 102 and exact.tolerance < 1
    assert share.is_percent and share.value == 50
    assert money_formatted("You spent forty thousand naira and N500.", "NGN") == (
        "You spent forty thousand naira and ₦500.")


def test_digits_and_words_in_one_answer_are_each_read_once():
    figures = extract_figures("₦1.5 million and forty thousand naira, then 40 thousand")
    assert [(f.value, f.in_words) for f in figures] == [(1_500_000, False), (40_000, True), (40_000, False)]
