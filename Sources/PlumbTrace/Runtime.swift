// The tracer's runtime: loads a TracePlan, attaches its probes, runs the event loop and
// prints maps as bpftrace prints them.
import PlumbLang
