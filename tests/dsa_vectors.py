"""A fixed DSA key, a self-signed DSA CA certificate valid until the year 9966 and a DSA CSR.

cryptography 51 deprecates every DSA key API (generating, loading, signing), so the tests that check how
cfsslpy refuses or reports DSA keys use these, made once with OpenSSL 3.0 (the key never expires; the
certificate's notAfter is far away):

    openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:1024 -pkeyopt dsa_paramgen_q_bits:160 -out p.pem
    openssl genpkey -paramfile p.pem -out k8.pem                      # DSA_PKCS8
    openssl pkey -in k8.pem -traditional -out kt.pem                   # DSA_TRADITIONAL
    openssl req -x509 -new -key k8.pem -subj "/CN=DSA test root" -days 2900000 -sha256 -set_serial 1 \\
        -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign -out c.pem   # DSA_CA_CERT
    openssl req -new -key k8.pem -subj "/CN=dsa.example.com" -sha256 -out r.pem                     # DSA_CSR
"""

DSA_PKCS8 = b"""\
-----BEGIN PRIVATE KEY-----
MIIBSwIBADCCASwGByqGSM44BAEwggEfAoGBANgvxi4niZM181WGkdjLl6N96rP6
a5pw4EZGro2rX+IO9Hxt6q+chVafy9QtseiXfw1nzFTblok9ak79gyqbxtOJEyhd
fJ8sHtX+mqtTmYqenOfxI99eqEd1a2gM6uBoErz7A6LA8mPA5oWXWmFu6u4mJ1CW
kyNm6uO2YfqmDq1vAhUA5CTwF0c8JuxZ32xR2bOz03kpHdsCgYEAvEJbYMy8RoLM
MxtZFxmxBB/2/TXhvz+9Q8WKEUdYPZFgGqXz1JDwz3b4pXNj/zYhxS8WIb6e4WeY
T8HQ4nW8nFH+mCfGK3aek0V6FCToTrPlZX9hCMy7GXa9gKmEEnQz57wqAjLRFNe3
QDaXpTke3GvXQ2xAOO6W37y2ybmZTbAEFgIUJfRoCm1dLPoC5U+MqEH0wNSA3VA=
-----END PRIVATE KEY-----
"""

DSA_TRADITIONAL = b"""\
-----BEGIN DSA PRIVATE KEY-----
MIIBvAIBAAKBgQDYL8YuJ4mTNfNVhpHYy5ejfeqz+muacOBGRq6Nq1/iDvR8beqv
nIVWn8vULbHol38NZ8xU25aJPWpO/YMqm8bTiRMoXXyfLB7V/pqrU5mKnpzn8SPf
XqhHdWtoDOrgaBK8+wOiwPJjwOaFl1phburuJidQlpMjZurjtmH6pg6tbwIVAOQk
8BdHPCbsWd9sUdmzs9N5KR3bAoGBALxCW2DMvEaCzDMbWRcZsQQf9v014b8/vUPF
ihFHWD2RYBql89SQ8M92+KVzY/82IcUvFiG+nuFnmE/B0OJ1vJxR/pgnxit2npNF
ehQk6E6z5WV/YQjMuxl2vYCphBJ0M+e8KgIy0RTXt0A2l6U5Htxr10NsQDjult+8
tsm5mU2wAoGBAMSO14QS/Z6ECBiNbgoxzgXrTKj1pGTiZtU2IzqmpbYXjcXX9m3f
w4SRvDZ+fgdW4F3Rgayxtjh6YbVyomVfjnmxuDN8KutAOK2kqmXjc4vvralPSe4k
KyisHm0hLSOhk9aK6lufjHwc9aAKSenN8S4tWO6GMMx2aD6h1z30MPMrAhQl9GgK
bV0s+gLlT4yoQfTA1IDdUA==
-----END DSA PRIVATE KEY-----
"""

DSA_CA_CERT = b"""\
-----BEGIN CERTIFICATE-----
MIICzzCCAoygAwIBAgIBATALBglghkgBZQMEAwIwGDEWMBQGA1UEAwwNRFNBIHRl
c3Qgcm9vdDAgFw0yNjEyMDcxNDA1NTdaGA85OTY2MTExMjE0MDU1N1owGDEWMBQG
A1UEAwwNRFNBIHRlc3Qgcm9vdDCCAbgwggEsBgcqhkjOOAQBMIIBHwKBgQDYL8Yu
J4mTNfNVhpHYy5ejfeqz+muacOBGRq6Nq1/iDvR8beqvnIVWn8vULbHol38NZ8xU
25aJPWpO/YMqm8bTiRMoXXyfLB7V/pqrU5mKnpzn8SPfXqhHdWtoDOrgaBK8+wOi
wPJjwOaFl1phburuJidQlpMjZurjtmH6pg6tbwIVAOQk8BdHPCbsWd9sUdmzs9N5
KR3bAoGBALxCW2DMvEaCzDMbWRcZsQQf9v014b8/vUPFihFHWD2RYBql89SQ8M92
+KVzY/82IcUvFiG+nuFnmE/B0OJ1vJxR/pgnxit2npNFehQk6E6z5WV/YQjMuxl2
vYCphBJ0M+e8KgIy0RTXt0A2l6U5Htxr10NsQDjult+8tsm5mU2wA4GFAAKBgQDE
jteEEv2ehAgYjW4KMc4F60yo9aRk4mbVNiM6pqW2F43F1/Zt38OEkbw2fn4HVuBd
0YGssbY4emG1cqJlX455sbgzfCrrQDitpKpl43OL762pT0nuJCsorB5tIS0joZPW
iupbn4x8HPWgCknpzfEuLVjuhjDMdmg+odc99DDzK6NjMGEwHQYDVR0OBBYEFDl4
R3joESCq6BITDCMwvEf7kQTvMB8GA1UdIwQYMBaAFDl4R3joESCq6BITDCMwvEf7
kQTvMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAsGCWCGSAFlAwQD
AgMwADAtAhUAtuwcccq3n9KBxVtk1zu3urnqX3sCFFODu2MR+qhak0wkIzYO2sFs
tKGq
-----END CERTIFICATE-----
"""

DSA_CSR = b"""\
-----BEGIN CERTIFICATE REQUEST-----
MIICHzCCAd0CAQAwGjEYMBYGA1UEAwwPZHNhLmV4YW1wbGUuY29tMIIBuDCCASwG
ByqGSM44BAEwggEfAoGBANgvxi4niZM181WGkdjLl6N96rP6a5pw4EZGro2rX+IO
9Hxt6q+chVafy9QtseiXfw1nzFTblok9ak79gyqbxtOJEyhdfJ8sHtX+mqtTmYqe
nOfxI99eqEd1a2gM6uBoErz7A6LA8mPA5oWXWmFu6u4mJ1CWkyNm6uO2YfqmDq1v
AhUA5CTwF0c8JuxZ32xR2bOz03kpHdsCgYEAvEJbYMy8RoLMMxtZFxmxBB/2/TXh
vz+9Q8WKEUdYPZFgGqXz1JDwz3b4pXNj/zYhxS8WIb6e4WeYT8HQ4nW8nFH+mCfG
K3aek0V6FCToTrPlZX9hCMy7GXa9gKmEEnQz57wqAjLRFNe3QDaXpTke3GvXQ2xA
OO6W37y2ybmZTbADgYUAAoGBAMSO14QS/Z6ECBiNbgoxzgXrTKj1pGTiZtU2Izqm
pbYXjcXX9m3fw4SRvDZ+fgdW4F3Rgayxtjh6YbVyomVfjnmxuDN8KutAOK2kqmXj
c4vvralPSe4kKyisHm0hLSOhk9aK6lufjHwc9aAKSenN8S4tWO6GMMx2aD6h1z30
MPMroAAwCwYJYIZIAWUDBAMCAy8AMCwCFA5or4X1hdCaAJHmnt2ummb467zBAhQH
r+xgOnZVWoDmANYt08W+VsQsUA==
-----END CERTIFICATE REQUEST-----
"""
