# Charts for the benchmark report, drawn from the data file report.py writes:
#   "label" rps cpu_us p50 p99 p999 open_p50 open_p99 open_p999
# Call: gnuplot -e "datafile='...'; outdir='...'" charts.gp
# Writes outdir/throughput.png (req/s and server CPU per request) and outdir/latency.png
# (one-request-at-a-time and fixed-rate latency percentiles, log scale).

set terminal pngcairo size 1200,640 font "sans,10" noenhanced
set style data histograms
set style fill solid 0.85 border -1
set boxwidth 0.8
set grid ytics
set xtics rotate by -25 left nomirror
set format y "%.0f"

set output outdir."/throughput.png"
set multiplot layout 1,2 title "Warm no-op throughput, wrk -t1 -c32 (same machine, loopback)"
set title "requests per second (higher is better)"
set style histogram clustered gap 1
set yrange [0:*]
unset key
plot datafile using 2:xtic(1) title "req/s" lc rgb "#3366cc"
set title "server CPU per request, us (lower is better)"
plot datafile using 3:xtic(1) title "us/req" lc rgb "#dc3912"
unset multiplot

set output outdir."/latency.png"
set multiplot layout 1,2
set logscale y
set yrange [*:*]
set key outside top center horizontal
set tmargin 5
set ylabel "latency, us (log scale, lower is better)"
set style histogram clustered gap 1
set title "one request at a time, keep-alive"
plot datafile using 4:xtic(1) title "p50" lc rgb "#3366cc", \
     '' using 5 title "p99" lc rgb "#ff9900", \
     '' using 6 title "p99.9" lc rgb "#dc3912"
set title "fixed arrival rate (open loop)"
plot datafile using 7:xtic(1) title "p50" lc rgb "#3366cc", \
     '' using 8 title "p99" lc rgb "#ff9900", \
     '' using 9 title "p99.9" lc rgb "#dc3912"
unset multiplot
