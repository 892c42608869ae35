"""The SQL tool on real DuckDB: exact observations for queries over a question's tables, the
read-only and no-file/no-network rules, the time and row limits, how the tables get in, when the
databases close, and how the observations reach the agent."""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass

import duckdb
import pytest

from fireact.agent.episode import Agent, new_episode, run_episode, use_tool
from fireact.agent.parse import parse_action
from fireact.errors import FireactError
from fireact.llm.scripted import ScriptedLLM
from fireact.tasks.base import Example, Task, score_qa
from fireact.tools.base import Tool, ToolState
from fireact.tools.sql import (
    SQLTool,
    connect,
    describe,
    load_tables,
    registered_tables,
    render,
    table_data,
)

PEOPLE = {
    "name": "people",
    "header": ["name", "age", "city id"],
    "rows": [["Ann", 30, 1], ["Bob", None, 2], ["Cy", 41, None]],
}
CITIES = {"name": "cities", "header": ["id", "city"], "rows": [[1, "Paris"], [2, "Oslo"]]}
BIG = {"name": "big", "header": ["i"], "rows": [[i] for i in range(2000)]}
TABLES = [PEOPLE, CITIES]
REFUSED = (
    "Refused: only read queries (SELECT, WITH, VALUES, FROM, DESCRIBE, SHOW, SUMMARIZE) are "
    "allowed, not {}."
)
NO_FILES = (
    'Permission Error: Cannot access file "{}" - file system operations are disabled by '
    "configuration"
)


def ask(*calls: str, tables=TABLES, **options) -> list[str]:
    """The observations of ``action[argument]`` calls made in order by one episode."""

    async def go() -> list[str]:
        tool = SQLTool(**options)
        state = ToolState(episode_id="q1")
        load_tables(state, tables)
        try:
            return [await tool(*parse_action(call), state) for call in calls]  # type: ignore[misc]
        finally:
            await tool.aclose()

    return asyncio.run(go())


def test_tables_lists_tables_columns_and_types():
    assert ask("tables[]", "tables[people]", "tables[nope]") == [
        'people: name VARCHAR, age BIGINT, "city id" BIGINT (3 rows) ; '
        "cities: id BIGINT, city VARCHAR (2 rows)",
        'people: name VARCHAR, age BIGINT, "city id" BIGINT (3 rows)',
        "No table named nope. Tables: people, cities.",
    ]


def test_join_across_two_tables():
    query = (
        'sql[SELECT p.name, c.city FROM people p JOIN cities c ON p."city id" = c.id '
        "ORDER BY p.name]"
    )
    assert ask(query) == ["name | city ; Ann | Paris ; Bob | Oslo ; (2 rows)"]


def test_nulls_and_aggregates():
    assert ask(
        'sql[SELECT p.name, p.age, c.city FROM people p LEFT JOIN cities c ON p."city id" = c.id '
        "ORDER BY p.name]",
        "sql[SELECT count(*) AS n, count(age) AS known, avg(age) AS mean, sum(age) AS total "
        "FROM people]",
        "sql[SELECT name FROM people WHERE age IS NULL]",
        'sql[SELECT city, count(*) AS n FROM people JOIN cities ON id = "city id" GROUP BY city '
        "ORDER BY city]",
    ) == [
        "name | age | city ; Ann | 30 | Paris ; Bob | NULL | Oslo ; Cy | 41 | NULL ; (3 rows)",
        "n | known | mean | total ; 3 | 2 | 35.5 | 71 ; (1 row)",
        "name ; Bob ; (1 row)",
        "city | n ; Oslo | 1 ; Paris | 1 ; (2 rows)",
    ]


def test_values_are_rendered_compactly():
    assert ask(
        "sql[SELECT 1/3 AS third, 0.1::DOUBLE + 0.2 AS sum, 1e20 AS big, true AS yes, NULL AS "
        "nothing, DATE '2020-01-02' AS day, [1, 2] AS list, 2.50 AS dec, 'a\nb' AS text]",
        "sql[SELECT repeat('x', 150) AS long]",
    ) == [
        "third | sum | big | yes | nothing | day | list | dec | text ; "
        "0.333333333333333 | 0.3 | 1e+20 | true | NULL | 2020-01-02 | [1, 2] | 2.50 | a b ; "
        "(1 row)",
        "long ; " + "x" * 99 + "… ; (1 row)",
    ]


def test_an_oversized_result_is_capped():
    assert ask("sql[SELECT * FROM big ORDER BY i DESC]", tables=[BIG], max_rows=3) == [
        "i ; 1999 ; 1998 ; 1997 ; (showing 3 of 2000 rows)"
    ]
    # the text is kept under max_chars too: fewer rows than max_rows when they are long
    out = ask("sql[SELECT repeat('y', 90) AS t FROM big]", tables=[BIG], max_chars=300)[0]
    assert out == "t" + f" ; {'y' * 90}" * 3 + " ; (showing 3 of 2000 rows)"
    assert ask("sql[SELECT * FROM big WHERE i < 0]", tables=[BIG]) == ["i ; (0 rows)"]


def test_sql_errors_are_one_line_observations():
    assert ask(
        "sql[SELEC name FROM people]",
        "sql[SELECT nme FROM people]",
        "sql[SELECT * FROM peeple]",
        "sql[SELECT 'a'::INTEGER]",
        "sql[   ]",
        "sql[SELECT 1; SELECT 2]",
    ) == [
        'Parser Error: syntax error at or near "SELEC"',
        'Binder Error: Referenced column "nme" not found in FROM clause! Candidate bindings: '
        '"name", "age"',
        'Catalog Error: Table with name peeple does not exist! Did you mean "people"?',
        "Conversion Error: Could not convert string 'a' to INT32",
        "Empty query: write sql[SELECT ...]; tables[] lists the tables.",
        "Refused: one statement at a time (2 given).",
    ]
    assert ask("sql[SELECT 12345]", max_query_chars=10) == [
        "Query too long (12 characters; at most 10)."
    ]


def test_a_long_query_times_out_and_the_episode_goes_on(caplog):
    cross = "sql[SELECT count(*) FROM big a, big b, big c WHERE (a.i * 7 + b.i * 3 + c.i) % 1000003 = 5]"
    started = time.monotonic()
    out = ask(cross, "sql[SELECT count(*) AS n FROM big]", tables=[BIG], timeout=0.5)
    elapsed = time.monotonic() - started
    assert out == ["Query timed out after 0.5 s", "n ; 2000 ; (1 row)"]
    assert elapsed < 3  # 8e9 rows would take minutes
    gc.collect()  # the interrupted query's outcome was consumed: asyncio has nothing to log
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_files_and_network_are_out_of_reach(tmp_path):
    target = tmp_path / "out.csv"
    assert ask(
        "sql[SELECT * FROM read_csv('/etc/passwd')]",
        "sql[SELECT * FROM read_text('/etc/passwd')]",
        "sql[SELECT * FROM glob('/etc/*')]",
        "sql[SELECT * FROM read_json('http://127.0.0.1:9/x.json')]",
        f"sql[ATTACH '{tmp_path / 'x.db'}' AS x]",
        f"sql[COPY people TO '{target}']",
        f"sql[COPY (SELECT 1) TO '{target}']",
        f"sql[EXPORT DATABASE '{tmp_path}']",
        "sql[INSTALL httpfs]",
        "sql[LOAD httpfs]",
    ) == [
        NO_FILES.format("/etc/passwd"),
        NO_FILES.format("/etc/passwd"),
        NO_FILES.format("/etc/*"),
        NO_FILES.format("http://127.0.0.1:9/x.json"),
        REFUSED.format("ATTACH"),
        REFUSED.format("COPY"),
        REFUSED.format("COPY"),
        REFUSED.format("EXPORT"),
        REFUSED.format("INSTALL"),
        REFUSED.format("LOAD"),
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_database_itself_refuses_files_extensions_and_settings(tmp_path):
    """Below the statement check: the connection the tool opens refuses on its own."""
    conn = connect(table_data([PEOPLE]))
    try:
        for statement in (
            f"ATTACH '{tmp_path / 'x.db'}' AS x",
            f"COPY people TO '{tmp_path / 'out.csv'}'",
            "SELECT * FROM read_csv('/etc/passwd')",
            "INSTALL httpfs",
            "LOAD httpfs",
        ):
            with pytest.raises(duckdb.PermissionException):
                conn.execute(statement)
        for statement in (
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "RESET lock_configuration",
            "SET memory_limit = '10GB'",
            "PRAGMA threads = 8",
        ):
            with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
                conn.execute(statement)
        settings = conn.execute(
            "SELECT current_setting('enable_external_access'), current_setting('threads'), "
            "current_setting('python_enable_replacements'), current_setting('temp_directory')"
        ).fetchall()
        assert settings == [(False, 1, False, "")]
    finally:
        conn.close()
    assert list(tmp_path.iterdir()) == []


def test_ddl_dml_and_settings_are_refused():
    assert ask(
        "sql[CREATE TABLE x (a INTEGER)]",
        "sql[CREATE VIEW v AS SELECT 1]",
        "sql[INSERT INTO people VALUES ('Dee', 5, 1)]",
        "sql[WITH n AS (SELECT 1) INSERT INTO cities SELECT 3, 'Rome']",
        "sql[UPDATE people SET age = 0]",
        "sql[DELETE FROM people]",
        "sql[DROP TABLE people]",
        "sql[ALTER TABLE people ADD COLUMN x INTEGER]",
        "sql[PRAGMA table_info('people')]",
        "sql[SET threads = 8]",
        "sql[CALL duckdb_settings()]",
        "sql[EXPLAIN SELECT 1]",
        "sql[SELECT count(*) AS n, sum(age) AS ages FROM people]",
    ) == [
        REFUSED.format("CREATE"),
        REFUSED.format("CREATE"),
        REFUSED.format("INSERT"),
        REFUSED.format("INSERT"),
        REFUSED.format("UPDATE"),
        REFUSED.format("DELETE"),
        REFUSED.format("DROP"),
        REFUSED.format("ALTER"),
        REFUSED.format("PRAGMA"),
        REFUSED.format("SET"),
        REFUSED.format("CALL"),
        REFUSED.format("EXPLAIN"),
        "n | ages ; 3 | 71 ; (1 row)",  # nothing changed
    ]


def test_read_statements_of_every_form_run():
    assert ask(
        "sql[WITH old AS (SELECT * FROM people WHERE age > 35) SELECT name FROM old]",
        "sql[FROM cities SELECT city WHERE id = 2]",
        "sql[VALUES (1, 'a')]",
        "sql[DESCRIBE cities]",
        "sql[SELECT name FROM people UNION ALL SELECT city FROM cities ORDER BY 1 LIMIT 2;]",
    ) == [
        "name ; Cy ; (1 row)",
        "city ; Oslo ; (1 row)",
        "col0 | col1 ; 1 | a ; (1 row)",
        "column_name | column_type | null | key | default | extra ; "
        "id | BIGINT | YES | NULL | NULL | NULL ; "
        "city | VARCHAR | YES | NULL | NULL | NULL ; (2 rows)",
        "name ; Ann ; Bob ; (2 rows)",
    ]


# ------------------------------------------------------------------ the tables


def test_table_data_types_names_and_conversions():
    tables = table_data(
        [
            {
                "name": "t",
                "header": ["n", "x", "flag", "mixed", "", "N", None, "empty", "huge"],
                "rows": [
                    [1, 1, True, "a", 1, 2, 3, None, 2**70],
                    [2, 2.5, False, 7, 1, 2, 3, None, 1],
                    [None, None, None, 1.5, 1, 2, 3, None, None],
                ],
            },
            {"name": "t", "header": ["a"], "rows": []},
            {"name": "", "header": ["a"]},
        ]
    )
    assert [t.name for t in tables] == ["t", "t_2", "table_3"]
    first = tables[0]
    assert first.columns == (
        "n",
        "x",
        "flag",
        "mixed",
        "column_5",
        "N_2",
        "column_7",
        "empty",
        "huge",
    )
    assert first.types == (
        "BIGINT", "DOUBLE", "BOOLEAN", "VARCHAR", "BIGINT", "BIGINT", "BIGINT", "VARCHAR", "HUGEINT",
    )  # fmt: skip
    assert [row[:4] for row in first.rows] == [
        (1, 1.0, True, "a"),
        (2, 2.5, False, "7"),
        (None, None, None, "1.5"),
    ]
    assert describe(tables) == (
        "t: n BIGINT, x DOUBLE, flag BOOLEAN, mixed VARCHAR, column_5 BIGINT, "
        "N_2 BIGINT, column_7 BIGINT, empty VARCHAR, huge HUGEINT (3 rows) ; "
        "t_2: a VARCHAR (0 rows) ; table_3: a VARCHAR (0 rows)"
    )
    assert describe(tables[1:], types=False) == "t_2: a (0 rows) ; table_3: a (0 rows)"
    out = ask("sql[SELECT sum(huge) AS s, max(x) AS m, count(empty) AS e FROM t]", tables=[
        {"name": "t", "header": ["huge", "x", "empty"], "rows": [[2**70, 1, None], [1, 2.5, None]]}
    ])  # fmt: skip
    assert out == [f"s | m | e ; {2**70 + 1} | 2.5 | 0 ; (1 row)"]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"name": "t"}, "tables must be a list of {name, header, rows} objects"),
        ([{"name": "t", "rows": []}], "table 't': 'header' must be a non-empty list of names"),
        (
            [{"name": "t", "header": ["a", "b"], "rows": [[1, 2], [3]]}],
            "table 't' row 2: expected a list of 2 values (one per column), got [3]",
        ),
        (
            [{"name": "t", "header": ["a"], "rows": [[{"x": 1}]]}],
            "table 't' row 1 column 'a': dict values are not supported (use str, int, float, "
            "bool or None)",
        ),
    ],
)
def test_bad_tables_are_user_errors(tables, message):
    with pytest.raises(FireactError) as raised:
        load_tables(ToolState(), tables)
    assert str(raised.value) == message


def test_tables_for_an_episode_id_and_load_tables_precedence():
    by_id = {"q1": [CITIES], "q2": [PEOPLE]}

    async def go() -> list[str]:
        tool = SQLTool(tables_for=by_id.get)
        first, retry, other, unknown = (ToolState(episode_id=i) for i in ("q1", "q1", "q2", "q9"))
        out = [
            await tool("tables", "", first),
            await tool("tables", "", retry),  # a fresh state (Reflexion's next try): same tables
            await tool("tables", "", other),
            await tool("tables", "", unknown),
            await tool("sql", "SELECT 1 + 1 AS two", unknown),
        ]
        load_tables(first, [PEOPLE])  # registered tables win, and replace the database
        out.append(await tool("tables", "", first))
        load_tables(first, [CITIES, PEOPLE])
        out.append(await tool("sql", "SELECT count(*) AS n FROM cities", first))
        assert tool.open_episodes() == 4
        await tool.aclose()
        assert tool.open_episodes() == 0
        return out

    cities = "cities: id BIGINT, city VARCHAR (2 rows)"
    people = 'people: name VARCHAR, age BIGINT, "city id" BIGINT (3 rows)'
    assert asyncio.run(go()) == [
        cities,
        cities,
        people,
        "No tables for this question.",
        "two ; 2 ; (1 row)",
        people,
        "n ; 2 ; (1 row)",
    ]


def test_names_that_need_quotes_load_and_are_shown_quoted():
    odd = {
        "name": 'a.b "c"',
        "header": ["order", 'we"ird', "two  spaces"],
        "rows": [[1, 2, "x  y"]],
    }
    assert ask(
        "tables[]", 'sql[SELECT "order", "we""ird", "two spaces" FROM "a.b ""c"""]', tables=[odd]
    ) == [
        '"a.b ""c""": "order" BIGINT, "we""ird" BIGINT, "two spaces" VARCHAR (1 row)',
        'order | we"ird | two spaces ; 1 | 2 | x  y ; (1 row)',  # text keeps its spaces
    ]


@dataclass(frozen=True)
class Table:
    """A table as an object (as `fireact.tableqa` keeps them), not a dict."""

    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


def test_tables_as_objects_and_without_types():
    standings = Table("standings", ("team", "points"), (("Iron Wolves", 31), ("Blue Owls", 24)))
    assert ask(
        "tables[]", "sql[SELECT team FROM standings ORDER BY points DESC LIMIT 1]",
        tables=(standings,), column_types=False,
    ) == ["standings: team, points (2 rows)", "team ; Iron Wolves ; (1 row)"]  # fmt: skip


def test_concurrent_episodes_each_query_their_own_tables():
    async def go() -> list[str]:
        tool = SQLTool()
        states = [ToolState(episode_id=f"q{n}") for n in range(6)]
        for n, state in enumerate(states):
            load_tables(state, [{"name": "t", "header": ["n"], "rows": [[n]] * (n + 1)}])
        try:
            return await asyncio.gather(
                *(tool("sql", "SELECT sum(n) AS s FROM t", state) for state in states)
            )
        finally:
            await tool.aclose()

    assert asyncio.run(go()) == [f"s ; {n * (n + 1)} ; (1 row)" for n in range(6)]


def test_bad_tables_from_tables_for_stop_the_run():
    bad = [{"name": "t", "header": ["a"], "rows": [[1, 2]]}]
    agent = make_agent(ScriptedLLM({}), SQLTool(tables_for=lambda _: bad))

    async def go() -> None:
        ep = new_episode(EXAMPLE, agent)
        try:
            await use_tool(ep, agent, "tables[]", ("tables", ""))
        finally:
            await agent.tool.aclose()

    with pytest.raises(FireactError, match=r"table 't' row 1: expected a list of 1 values"):
        asyncio.run(go())


def test_databases_close_when_the_episode_state_is_collected_and_on_aclose():
    async def go() -> None:
        tool = SQLTool()
        kept, dropped = ToolState(episode_id="a"), ToolState(episode_id="b")
        load_tables(kept, TABLES)
        load_tables(dropped, TABLES)
        await tool("tables", "", kept)
        await tool("tables", "", dropped)
        db_kept, db_dropped = await tool.database(kept), await tool.database(dropped)
        assert tool.open_episodes() == 2
        del dropped
        gc.collect()
        assert tool.open_episodes() == 1
        with pytest.raises(duckdb.ConnectionException):
            db_dropped.conn.execute("SELECT 1")
        assert db_kept.conn.execute("SELECT count(*) FROM people").fetchall() == [(3,)]
        await tool.aclose()
        with pytest.raises(duckdb.ConnectionException):
            db_kept.conn.execute("SELECT 1")
        assert registered_tables(kept) is not None  # the registration lives with the state

    asyncio.run(go())


def test_render_counts_rows():
    assert render(["a"], [(1,)], 1) == "a ; 1 ; (1 row)"
    assert render(["a"], [(1,), (2,)], None) == "a ; 1 ; 2 ; (showing 2 of more than 2 rows)"
    assert render(["a"], [(1,), (2,)], 2, max_chars=6) == "a ; 1 ; (showing 1 of 2 rows)"
    assert render(["a"], [(1,), (None,)], 5) == "a ; 1 ; NULL ; (showing 2 of 5 rows)"


# ------------------------------------------------------------------ as the agent sees it

EXAMPLE = Example("q1", "Which city does Ann live in?", "Paris")


def make_agent(llm, tool, **options) -> Agent:
    task = Task("hotpotqa", "dev", [EXAMPLE], score_qa, "hotpotqa")
    return Agent(llm, tool, task, head="", **options)


def test_tool_shape():
    tool = SQLTool()
    assert isinstance(tool, Tool)
    assert (tool.name, tool.actions) == ("sql", frozenset({"sql", "tables"}))
    with pytest.raises(ValueError, match=r"not search\[\.\.\.\]"):
        asyncio.run(tool("search", "x", ToolState()))


def test_observations_through_use_tool_are_one_line():
    agent = make_agent(ScriptedLLM({}), SQLTool(), tool_timeout=0.3)
    actions = [
        "tables[]",
        'sql[SELECT p.name, c.city FROM people p JOIN cities c ON p."city id" = c.id]',
        "sql[DROP TABLE people]",
        "sql[SELECT count(*) FROM big a, big b, big c WHERE (a.i * 7 + b.i * 3 + c.i) % 1000003 = 5]",
        "sql[SELECT count(*) AS n FROM people]",
    ]

    async def go() -> tuple[list[str], float]:
        ep = new_episode(EXAMPLE, agent)
        load_tables(ep.tool_state, [*TABLES, BIG])
        out = []
        started = time.monotonic()
        for action in actions:
            out.append(await use_tool(ep, agent, action, parse_action(action)))
        elapsed = time.monotonic() - started
        await agent.tool.aclose()
        return out, elapsed

    out, elapsed = asyncio.run(go())
    assert out == [
        'people: name VARCHAR, age BIGINT, "city id" BIGINT (3 rows) ; '
        "cities: id BIGINT, city VARCHAR (2 rows) ; big: i BIGINT (2000 rows)",
        "name | city ; Ann | Paris ; Bob | Oslo ; (2 rows)",
        REFUSED.format("DROP"),
        # the agent's own tool timeout (0.3 s) came first: the query is interrupted behind it
        f"Tool error: {actions[3]} timed out after 0.3 s.",
        "n ; 3 ; (1 row)",
    ]
    assert elapsed < 3  # 8e9 rows: the cancelled query did not hold the episode's database


def test_react_episode_with_the_sql_tool():
    tables = {"q1": TABLES}
    llm = ScriptedLLM(
        {
            "q1": [
                " Which tables are there?\nAction: tables[]",
                ' Join them.\nAction: sql[SELECT city FROM people JOIN cities ON id = "city id" '
                "WHERE name = 'Ann']",
                " Ann lives in Paris.\nAction: finish[Paris]",
            ]
        }
    )
    agent = make_agent(llm, SQLTool(tables_for=tables.get))
    ep = asyncio.run(run_episode(EXAMPLE, agent))
    assert ep.trajectory == (
        "Thought: Which tables are there?\nAction: tables[]\n"
        'Observation: people: name VARCHAR, age BIGINT, "city id" BIGINT (3 rows) ; '
        "cities: id BIGINT, city VARCHAR (2 rows)\n"
        'Thought: Join them.\nAction: sql[SELECT city FROM people JOIN cities ON id = "city id" '
        "WHERE name = 'Ann']\n"
        "Observation: city ; Paris ; (1 row)\n"
        "Thought: Ann lives in Paris.\nAction: finish[Paris]\n"
        "Observation: Episode finished, reward = True\n"
    )
    asyncio.run(agent.tool.aclose())
