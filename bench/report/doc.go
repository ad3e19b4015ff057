// Command report turns the results of bench/compare.sh into the section
// "## Side by side with peer brokers" of docs/benchmarks.md, and answers
// the script's questions about results so far.
//
//	report render -results results.jsonl -physical physical.json -machine machine.txt -command "..." -doc docs/benchmarks.md
//	report median -results results.jsonl -target amqp-quorum -workload publish -variant 1KiB-1p -metric publish_msgs_per_sec
//
// It owns the layout of that section: medians with their spread (min–max)
// over the runs, Ferry / peer ratios, the physical limits, the machine,
// the exact command, and the goals marked met or not met. It must never
// touch any other section of the document, and never show a figure from a
// run whose accounting failed.
package main
