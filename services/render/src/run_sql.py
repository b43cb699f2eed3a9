# Written by sparkvc: runs the SQL file of a sparkSqlJobDriver job run.
#
# spark-submit refuses the Spark SQL CLI in cluster mode, so sparkvc submits
# this program instead: it reads the file through Spark (any Hadoop file
# system works), splits it into statements at ';' outside quotes and
# comments, runs them in order and prints what each query returns.
import sys

from pyspark.sql import SparkSession


def split_statements(text):
    """Splits SQL text at ';' outside quotes, backquotes and comments."""
    statements, current = [], []
    i, n = 0, len(text)
    quote = None
    while i < n:
        c = text[i]
        if quote:
            current.append(c)
            if c == "\\" and quote != "`" and i + 1 < n:
                current.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in ("'", '"', "`"):
            quote = c
            current.append(c)
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            current.append(" ")
            continue
        elif c == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def main(path):
    # Set spark.sql.catalogImplementation=hive to use a Hive metastore.
    spark = SparkSession.builder.getOrCreate()
    text = "\n".join(row.value for row in spark.read.text(path, wholetext=True).collect())
    for statement in split_statements(text):
        result = spark.sql(statement)
        if result.columns:
            result.show(n=1000, truncate=False)
    spark.stop()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: run_sql.py <sql file>")
    main(sys.argv[1])
