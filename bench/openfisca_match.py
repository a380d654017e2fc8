"""B1 reference: the benchmark rules as OpenFisca variables with vectorised numpy
formulas, over the columns `policy-push-bench match` wrote to a directory.

Usage: python3 openfisca_match.py DIR   (prints JSON: median ms and count per rule)

Strings are integer codes (as OpenFisca's Enum variables store them); dates are
yyyymmdd integers; `age` is a formula over the birth date, so it is computed in every
fresh simulation, as the other engines compute it. Each timed run builds a fresh
simulation (untimed) and times `calculate` of the rule alone.
"""

import json
import os
import sys
import time

import numpy as np
from openfisca_core.entities import build_entity
from openfisca_core.periods import DateUnit
from openfisca_core.simulations import SimulationBuilder
from openfisca_core.taxbenefitsystems import TaxBenefitSystem
from openfisca_core.variables import Variable

DIR = sys.argv[1]
M = json.load(open(os.path.join(DIR, "manifest.json")))
N, TODAY, RUNS = M["n"], M["today"], M["runs"]
CODES = M["codes"]
PERIOD = str(TODAY // 10000)

Person = build_entity(key="person", plural="persons", label="Person", is_person=True)


def code(column, value):
    return CODES[column].index(value)


def codes(column, values):
    return [code(column, v) for v in values]


def load():
    cols = {}
    for name in M["u8"]:
        cols[name] = np.fromfile(os.path.join(DIR, name + ".u8"), dtype=np.uint8).astype(np.int16)
    for name in M["i32"]:
        cols[name] = np.fromfile(os.path.join(DIR, name + ".i32"), dtype=np.int32)
    for name in M["tags"]:
        cols["tag_" + name] = np.fromfile(os.path.join(DIR, "tag_" + name + ".u8"), dtype=np.uint8).astype(bool)
    return cols


COLS = load()


def v(p, name, period):
    return p(name, period)


def eq(p, period, col, value):
    return v(p, col, period) == code(col, value)


def isin(p, period, col, values):
    return np.isin(v(p, col, period), codes(col, values))


def b(p, period, col):
    return v(p, col, period).astype(bool)


FEMALE = 0
MALE = 1


def r01(p, period, _):
    age = p("age", period)
    return (b(p, period, "tag_recent_graduate")
            & isin(p, period, "employment_status", ["unemployed", "registered_unemployed"])
            & eq(p, period, "hukou", "local") & (age <= 30))


def r02(p, period, _):
    age = p("age", period)
    male = p("male", period) == MALE
    return (eq(p, period, "employment_status", "registered_unemployed") & eq(p, period, "hukou", "local")
            & ((~male & (age >= 40)) | (male & (age >= 50))) & (age < 60))


def r03(p, period, _):
    age = p("age", period)
    male = p("male", period) == MALE
    return (eq(p, period, "hukou", "local") & b(p, period, "flexible_employment")
            & (p("insured_months", period) >= 1)
            & ((~male & (age >= 40) & (age < 55)) | (male & (age >= 50) & (age < 60))))


def r04(p, period, _):
    age = p("age", period)
    return ((age >= 16) & (age <= 60)
            & isin(p, period, "employment_status", ["registered_unemployed", "flexible"])
            & isin(p, period, "district", ["浦东新区", "闵行区", "宝山区"])
            & isin(p, period, "education", ["junior_high", "high_school", "vocational"]))


def r05(p, period, _):
    return (b(p, period, "tag_graduating_student")
            & (b(p, period, "poverty_household") | b(p, period, "disability") | b(p, period, "student_loan")))


def r06(p, period, _):
    age = p("age", period)
    return ((age >= 16) & (age <= 24)
            & ~isin(p, period, "employment_status", ["employed", "student"])
            & eq(p, period, "hukou", "local")
            & isin(p, period, "district", ["浦东新区", "徐汇区", "杨浦区", "闵行区"])
            & ~b(p, period, "tag_recent_graduate"))


def r07(p, period, _):
    age = p("age", period)
    return ((p("cert_count", period) > 0)
            & (b(p, period, "cert_welder") | b(p, period, "cert_electrician"))
            & isin(p, period, "employment_status", ["unemployed", "registered_unemployed"]) & (age < 50))


def r08(p, period, _):
    age = p("age", period)
    return (eq(p, period, "employment_status", "registered_unemployed")
            & b(p, period, "since_present") & (p("since", period) <= 20250701)
            & (p("graduation_year", period) <= 2015) & (age >= 25) & (age <= 55)
            & isin(p, period, "education", ["high_school", "vocational", "associate"])
            & eq(p, period, "hukou", "local") & ~eq(p, period, "district", "崇明区"))


def r09(p, period, _):
    age = p("age", period)
    es = p("employment_status", period)
    gy = p("graduation_year", period)
    im = p("insured_months", period)
    return ((age >= 18) & (age <= 59) & eq(p, period, "hukou", "local")
            & isin(p, period, "district", ["浦东新区", "徐汇区", "长宁区", "静安区", "普陀区"])
            & isin(p, period, "education", ["vocational", "associate", "bachelor", "master"])
            & (gy >= 2000) & (gy <= 2024)
            & (es != code("employment_status", "retired")) & (es != code("employment_status", "student"))
            & (im >= 6) & (im < 240)
            & ~b(p, period, "poverty_household") & ~b(p, period, "disability")
            & ((p("male", period) == FEMALE) | (age < 50)) & ~b(p, period, "student_loan")
            & (b(p, period, "tag_youth") | b(p, period, "tag_recent_graduate")
               | (es == code("employment_status", "flexible")) | (es == code("employment_status", "employed"))))


def r10(p, period, _):
    age = p("age", period)
    im = p("insured_months", period)
    gy = p("graduation_year", period)
    return (eq(p, period, "employment_status", "employed") & (im / 12 >= 5)
            & (age - (2026 - gy) >= 20) & ~eq(p, period, "hukou", "local")
            & (im * 100 / (age * 12) >= 20))


FORMULAS = {
    "r01_graduate_jobseekers": r01, "r02_4050_unemployed": r02, "r03_flexible_insurance": r03,
    "r04_training_subsidy": r04, "r05_graduate_hardship": r05, "r06_youth_not_in_work": r06,
    "r07_certified_unemployed": r07, "r08_long_unemployed_dates": r08, "r09_twenty_clauses": r09,
    "r10_arithmetic": r10,
}


def variable(name, value_type, formula=None):
    attrs = {"value_type": value_type, "entity": Person, "definition_period": DateUnit.YEAR, "label": name}
    if formula is not None:
        attrs["formula"] = formula
    return type(name, (Variable,), attrs)


def age_formula(p, period, _):
    return (TODAY - p("birth", period)) // 10000


class System(TaxBenefitSystem):
    def __init__(self):
        super().__init__([Person])
        for name in COLS:
            self.add_variable(variable(name, bool if COLS[name].dtype == bool else int))
        self.add_variable(variable("age", int, age_formula))
        for rule, f in FORMULAS.items():
            self.add_variable(variable(rule, bool, f))


def simulation(system):
    sim = SimulationBuilder().build_default_simulation(system, count=N)
    for name, col in COLS.items():
        sim.set_input(name, PERIOD, col)
    return sim


def main():
    system = System()
    out = {}
    for rule in M["rules"]:
        times, count = [], 0
        for i in range(RUNS + 1):
            sim = simulation(system)
            t = time.perf_counter()
            res = sim.calculate(rule, PERIOD)
            ms = (time.perf_counter() - t) * 1e3
            count = int(np.count_nonzero(res))
            if i > 0:
                times.append(ms)
        times.sort()
        out[rule] = {"median_ms": times[len(times) // 2], "count": count}
    print(json.dumps({"rules": out, "openfisca": __import__("openfisca_core").__name__}))


main()
