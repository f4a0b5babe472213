"""Hand-computed expected values for dataset.py (docs/metrics.md's definitions, worked by hand).

sales, 2 Dec: c1..c10 enter (10 offered). answered c1 (wait 10), c2 (30), c7 (15), c8 (5), c10 (10):
ASA = 70 / 5 = 14. short abandon c3 (3 s < 5 s); abandoned c4 (40 s, while ringing), c5 (15 s);
timeout c6 (60 s); c9 still waiting. Answered within 20 s: c1, c7, c8, c10 = 4; abandoned within
20 s: c5 = 1. Talk (hold included) 100 + 200 + 60 + 60 + 30 = 450, hold 20, wrap-up 30 + 10 = 40:
AHT = 490 / 5 = 98. c8 went on to support at 09:21:05, so sales' talk for it is 60 s although
app_queue logs 135 s for it at the final hangup.
"""

SALES = {
    "queue": "sales", "offered": 10, "answered": 5, "abandoned": 2, "short_abandoned": 1, "abandoned_ringing": 1,
    "timeouts": 1, "in_progress": 1, "abandon_rate_pct": 25.0, "asa_seconds": 14.0,
    "service_level_pct": 50.0,  # offered: 4 / (5 + 2 + 1)
    "answered_in_sl": 4, "aht_seconds": 98.0, "avg_talk_seconds": 86.0, "avg_hold_seconds": 4.0,
    "avg_wrapup_seconds": 8.0, "longest_wait_seconds": 60.0, "handled": 5, "transfers": 1,
}
SUPPORT = {"queue": "support", "offered": 1, "answered": 1, "asa_seconds": 25.0, "service_level_pct": 0.0,
           "aht_seconds": 60.0, "longest_wait_seconds": 25.0, "transfers": 0}

SL_BY_FORMULA = {  # sales, T = 20
    "answered": 80.0,  # 4 / 5
    "offered": 50.0,  # 4 / (5 + 3)
    "abandoned_in_t_positive": 62.5,  # (4 + 1) / (5 + 3)
    "abandoned_after_t": 57.14,  # 4 / (5 + 3 - 1)
}

AGENTS = {
    "1001": {"answered": 3, "handled": 3, "aht_seconds": 73.33, "talk_seconds": 170.0, "hold_seconds": 20.0,
             "wrapup_seconds": 30.0, "transfers": 1, "login_seconds": 11100.0, "pause_seconds": {"lunch": 1800.0},
             "pause_seconds_total": 1800.0, "occupancy_pct": 2.37, "csat_pct": 100.0, "nps": 100.0},
    "1002": {"answered": 3, "handled": 3, "aht_seconds": 110.0, "talk_seconds": 310.0, "hold_seconds": 0.0,
             "wrapup_seconds": 20.0, "transfers": 0, "login_seconds": 3600.0, "pause_seconds": {"break": 900.0},
             "pause_seconds_total": 900.0, "occupancy_pct": 12.22, "csat_pct": 50.0, "nps": -50.0},
}

FCR_SALES = {"contacts": 8, "fcr_repeat_pct": 85.71, "fcr_repeat_resolved": 6, "fcr_repeat_repeated": 1,
             "fcr_repeat_pending": 0, "fcr_repeat_unknown_caller": 1, "fcr_disposition_pct": 66.67,
             "fcr_disposition_total": 3, "fcr_survey_pct": 50.0, "fcr_survey_total": 2,
             "callbacks_requested": 2, "callbacks_completed": 1}
FCR_SUPPORT = {"contacts": 1, "fcr_repeat_pct": 100.0, "fcr_disposition_pct": None, "fcr_survey_pct": 100.0}

IVR_MAIN = {"flow": "main", "sessions": 6, "contained": 2, "handed_off": 1, "dropped": 2, "in_progress": 1,
            "containment_pct": 40.0}
IVR_NODES = {"welcome": (6, 1, 16.67), "menu": (4, 1, 25.0), "queue_sales": (1, 0, 0.0), "hours": (1, 0, 0.0),
             "faq": (1, 0, 0.0)}

SURVEYS_ALL = {"csat_answers": 4, "csat_pct": 75.0, "nps_answers": 4, "nps": 25.0, "promoters": 2, "detractors": 1,
               "resolved_answers": 3, "resolved_pct": 66.67}

SLOT_0900 = {"offered": 7, "answered": 3, "asa_seconds": 18.33, "short_abandoned": 1, "abandoned": 2, "timeouts": 1}

#: the CLI contract's columns for the dataset's queue_log (seconds as decimals)
CSV_SALES = "sales,10,5,2,1,14.00,50.00,98.00,60.00"
CSV_SUPPORT = "support,1,1,0,0,25.00,0.00,60.00,25.00"


def subset(row: dict, expected: dict) -> dict:
    return {k: row.get(k) for k in expected}


# Recording and QA coverage, 2 Dec (dataset.quality_facts). Handled (answered) calls: sales c1 c2 c7 c8
# c10; support c8 (1002 after the transfer); 1001: c1 c8 c10 + the click-to-call o1; 1002: c2 c7 c8.
# Recordings: ready c1 c8 o1, failed c2, pending c10, c7 not required (policy), c4 unanswered.
# Scores: e1 = 90 (revision 2 replaces 80), e2 = 0 (critical), e3 = 70, e4 = none counted; e5 is the 5th's.
QUALITY_QUEUE = {
    "sales": {"handled_calls": 5, "recording_required": 4, "recorded": 2, "recording_failed": 1, "recording_pending": 1,
              "recorded_pct": 40.0, "recording_compliance_pct": 50.0, "evaluations": 2, "evaluated_calls": 2,
              "qa_coverage_pct": 100.0, "qa_coverage_of_handled_pct": 40.0, "qa_avg_score": 90.0,
              "qa_critical_failed": 0},
    "support": {"handled_calls": 1, "recording_required": 1, "recorded": 1, "recorded_pct": 100.0,
                "recording_compliance_pct": 100.0, "evaluations": 1, "evaluated_calls": 1, "qa_coverage_pct": 100.0,
                "qa_avg_score": 0.0, "qa_critical_failed": 1, "qa_critical_failed_pct": 100.0},
}
QUALITY_AGENT = {
    "1001": {"handled_calls": 4, "recording_required": 4, "recorded": 3, "recording_pending": 1, "recorded_pct": 75.0,
             "recording_compliance_pct": 75.0, "evaluations": 3, "evaluated_calls": 3, "qa_coverage_pct": 100.0,
             "qa_coverage_of_handled_pct": 75.0, "qa_avg_score": 80.0},
    "1002": {"handled_calls": 3, "recording_required": 2, "recorded": 1, "recording_failed": 1, "recorded_pct": 33.33,
             "recording_compliance_pct": 50.0, "evaluations": 1, "qa_coverage_pct": 100.0,
             "qa_coverage_of_handled_pct": 33.33, "qa_avg_score": 0.0, "qa_critical_failed_pct": 100.0},
}
QUALITY_FORM = {
    "customer-service": {"evaluations": 3, "evaluated_calls": 2, "qa_avg_score": 45.0, "qa_critical_failed": 1,
                         "qa_critical_failed_pct": 33.33},
    "outbound": {"evaluations": 1, "evaluated_calls": 1, "qa_avg_score": 70.0},
}
QUALITY_ALL = {"handled_calls": 6, "recording_required": 5, "recorded": 3, "recorded_pct": 50.0,
               "recording_compliance_pct": 60.0, "evaluations": 4, "evaluated_calls": 3, "qa_coverage_pct": 100.0,
               "qa_coverage_of_handled_pct": 50.0, "qa_avg_score": 53.33, "qa_critical_failed_pct": 25.0}
