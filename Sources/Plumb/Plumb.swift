// One import for library users: `import Plumb` loads, attaches and reads.
@_exported import PlumbELF
@_exported import PlumbBTF
@_exported import PlumbAsm
@_exported import PlumbSys
@_exported import PlumbBPF
