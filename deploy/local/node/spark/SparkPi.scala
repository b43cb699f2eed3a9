// sparkvc's own SparkPi (a Monte Carlo estimate of Pi), for the local Spark
// image. Apache's spark-examples jar is in neither the pyspark distribution
// nor Maven Central, so deploy/local/node/images compiles this file with the
// Scala compiler that Spark itself ships (jars/scala-compiler-*.jar) into
// /opt/spark/examples/jars/sparkvc-examples.jar. It prints the same
// "Pi is roughly ..." line as Apache's example, and which executors took part.
//
// usage: spark-submit --class sparkvc.examples.SparkPi local:///opt/spark/examples/jars/sparkvc-examples.jar [SLICES]
package sparkvc.examples

import java.util.concurrent.ThreadLocalRandom

import org.apache.spark.sql.SparkSession

object SparkPi {
  val PointsPerSlice = 100000L

  def main(args: Array[String]): Unit = {
    val slices = args.headOption.map(_.toInt).getOrElse(2)
    val spark = SparkSession.builder().appName("sparkvc SparkPi").getOrCreate()
    val sc = spark.sparkContext
    try {
      val points = slices * PointsPerSlice
      // Each task samples its own points; the sum of the hits goes back to the driver.
      val hits = sc.parallelize(0 until slices, slices).map { _ =>
        val rnd = ThreadLocalRandom.current()
        var inside = 0L
        var i = 0L
        while (i < PointsPerSlice) {
          val x = rnd.nextDouble(-1.0, 1.0)
          val y = rnd.nextDouble(-1.0, 1.0)
          if (x * x + y * y <= 1.0) inside += 1
          i += 1
        }
        inside
      }.reduce(_ + _)
      println(s"Pi is roughly ${4.0 * hits / points}")
      // The executors that registered with this driver (the driver itself is listed too).
      val executors = sc.statusTracker.getExecutorInfos.map(e => s"${e.host}:${e.port}").sorted
      println(s"sparkvc SparkPi: $slices slices, $points points, executors ${executors.mkString(" ")}")
    } finally {
      spark.stop()
    }
  }
}
