import PlumbTrace
import Testing
