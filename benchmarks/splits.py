"""The declared tuning split of the time-series track (fixed before any time-series-mode result was seen).

Settings of the time-series mode (``dynamix_ts``) are chosen on :data:`TUNING_TASKS` only; the report shows
:data:`HELD_OUT_TASKS` separately. The tuning half holds the four tasks an earlier analysis already looked at
(ETTh, M3 monthly, tourism monthly, nn5) plus the even-numbered tasks of ``tasks.json`` not yet in it.
"""

TUNING_TASKS = (
    "ETTh",
    "monash_m3_monthly",
    "monash_tourism_monthly",
    "nn5",
    "monash_m3_yearly",
    "monash_m1_quarterly",
    "monash_tourism_yearly",
    "monash_car_parts",
    "monash_covid_deaths",
)
HELD_OUT_TASKS = (
    "exchange_rate",
    "monash_m3_quarterly",
    "monash_m1_yearly",
    "monash_m1_monthly",
    "monash_tourism_quarterly",
    "monash_cif_2016",
    "monash_hospital",
    "monash_nn5_weekly",
)
